"""Database session settings for work that is not a web request.

Every connection starts with DATABASE_STATEMENT_TIMEOUT and DATABASE_LOCK_TIMEOUT (settings),
sized for web requests. Maintenance that legitimately runs long (migrations, moving stranded
DEFAULT rows into a new partition, large purges, seeding) lifts the statement limit on its own
connection for as long as it needs; the lock limit stays, so such work still never queues
every writer behind it.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections


def statement_timeout_lift(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """No statement limit on this connection until statement_timeout_restore."""
    with connections[using].cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")


def statement_timeout_restore(*, using: str = DEFAULT_DB_ALIAS) -> None:
    # RESET goes back to the value the connection started with (its `-c` options).
    with connections[using].cursor() as cursor:
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
