"""Database session settings for work that is not a web request.

Every connection starts with DATABASE_STATEMENT_TIMEOUT and DATABASE_LOCK_TIMEOUT (settings),
sized for web requests. Maintenance that legitimately runs long (migrations, moving stranded
DEFAULT rows into a new partition, large purges, seeding) lifts the statement limit on its own
connection for as long as it needs; the lock limit stays, so such work still never queues
every writer behind it.

Behind a pooler in transaction mode (settings.DATABASE_POOLER) a connection is a server
connection only for one transaction: a session-level SET would stay behind on the server
connection for whichever client gets it next. There the limits are the role's defaults in the
database (role_settings_apply, run by `migrate`) and a lift is SET LOCAL, which ends with its
transaction: outside a transaction it lifts nothing (run long maintenance, and `migrate`,
against PostgreSQL directly, not through the pooler).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections


def _pooled() -> bool:
    return getattr(settings, "DATABASE_POOLED", False)


def statement_timeout_lift(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """No statement limit on this connection until statement_timeout_restore (pooled: until
    the end of the current transaction, and nothing outside one)."""
    connection = connections[using]
    if _pooled():
        if connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = 0")
        return
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")


def statement_timeout_restore(*, using: str = DEFAULT_DB_ALIAS) -> None:
    connection = connections[using]
    if _pooled():
        # SET LOCAL ends with its transaction anyway; within it, back to the role's default.
        if connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout TO DEFAULT")
        return
    # RESET goes back to the value the connection started with (its `-c` options).
    with connection.cursor() as cursor:
        cursor.execute("RESET statement_timeout")


@contextmanager
def statement_timeout_lifted(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """`with statement_timeout_lifted(): ...` around long maintenance (a command or a task)."""
    connection = connections[using]
    statement_timeout_lift(using=using)
    try:
        yield
    except BaseException:
        # Inside a transaction that is failing, the rollback undoes the SET by itself, and a
        # RESET would fail there and hide the real error.
        if not connection.in_atomic_block:
            statement_timeout_restore(using=using)
        raise
    statement_timeout_restore(using=using)


def role_settings_apply(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Make settings.DATABASE_SESSION_SETTINGS (the timeouts) the defaults of the connecting
    role in this database: `ALTER ROLE CURRENT_USER IN DATABASE <db> SET ...`, which a role
    may do for itself. Behind a pooler the libpq `options` that carry them directly cannot
    be used; every new server connection the pooler opens starts with these instead."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        database = connection.ops.quote_name(cursor.fetchone()[0])
        for name, value in settings.DATABASE_SESSION_SETTINGS.items():
            # Names are ours (settings); the value is bound as a literal by psycopg.
            cursor.execute(
                f"ALTER ROLE CURRENT_USER IN DATABASE {database} SET {name} = %s", [value]
            )
