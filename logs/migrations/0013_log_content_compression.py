"""Compression for the log's big, rarely read columns (logs.partitions.COMPRESSED_COLUMNS: a
notification's request and merge tags, a delivery's subject, HTML and text, an event's
payload), and toast_tuple_target on every partition of the three log tables.

The method is lz4 where the server is built with it (`pg_settings` lists it among
default_toast_compression's values: Debian's PostgreSQL 15 does), else pglz, PostgreSQL's own
(the embedded PostgreSQL 18 wheel has no lz4). It is set on the parents' columns, which day
tables built from now on copy (`LIKE … INCLUDING ALL`), and on every partition that exists.
`SET COMPRESSION` applies to values written from then on: existing values keep theirs and
nothing is rewritten (a VACUUM FULL would recompress them, under the lock this migration
avoids). toast_tuple_target is a storage parameter, per partition only (a partitioned parent
refuses it); day tables built from now on get it from logs.partitions.storage_parameters.

Locks, as measured on PostgreSQL 15 and 18 (pg_locks inside the statement's transaction):
`ALTER COLUMN … SET COMPRESSION` takes ACCESS EXCLUSIVE on the table (and its TOAST table),
`SET (toast_tuple_target = …)` SHARE UPDATE EXCLUSIVE; both are catalog changes that read and
rewrite no row, so either is held for milliseconds. Each table is altered in a statement of
its own with `ONLY` (the parent without its partitions, then one partition at a time), under a
short lock_timeout and retried, never one transaction locking a whole table's partitions; the
whole runs under the partition managers' advisory lock, so no day is created meanwhile by a
process still running the old code.
"""

import time

from django.conf import settings
from django.db import migrations
from django.db.utils import OperationalError

# As logs.partitions had them when this was written (a migration keeps its own copy).
_COMPRESSED_COLUMNS = {
    "logs_notification": ("request", "merge_tags"),
    "logs_delivery": ("subject", "html", "text"),
    "logs_event": ("payload",),
}
_TOAST_TUPLE_TARGET = 512
_ADVISORY_LOCK_KEY = 0x6C6F6773  # logs.partitions._ADVISORY_LOCK_KEY
_ATTEMPTS = 20


def _method(cursor) -> str:
    cursor.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    (has_lz4,) = cursor.fetchone()
    return "lz4" if has_lz4 else "pglz"


def _partitions(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid "
        "WHERE inhparent = %s::regclass AND child.relkind = 'r' ORDER BY child.relname",
        [table],
    )
    return [name for (name,) in cursor.fetchall()]


def _retrying(cursor, statement: str) -> None:
    for attempt in range(_ATTEMPTS):
        try:
            cursor.execute(statement)
            return
        except OperationalError:
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _each_table(schema_editor, *, forwards: bool) -> None:
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        method = _method(cursor) if forwards else "default"
        cursor.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
        try:
            cursor.execute("SET lock_timeout = %s", [f"{settings.LOG_PARTITION_LOCK_TIMEOUT_MS}ms"])
            for table, columns in _COMPRESSED_COLUMNS.items():
                compression = ", ".join(
                    f"ALTER COLUMN {quote(column)} SET COMPRESSION {method}" for column in columns
                )
                storage = (
                    f"SET (toast_tuple_target = {_TOAST_TUPLE_TARGET})"
                    if forwards
                    else "RESET (toast_tuple_target)"
                )
                # The parent first: a day table built after this copies its columns' setting.
                _retrying(cursor, f"ALTER TABLE ONLY {quote(table)} {compression}")
                for partition in _partitions(cursor, table):
                    _retrying(
                        cursor, f"ALTER TABLE ONLY {quote(partition)} {compression}, {storage}"
                    )
            cursor.execute("RESET lock_timeout")
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_LOCK_KEY])


def compression_set(apps, schema_editor) -> None:
    _each_table(schema_editor, forwards=True)


def compression_reset(apps, schema_editor) -> None:
    _each_table(schema_editor, forwards=False)


class Migration(migrations.Migration):
    # One short statement per table, each retried on its own: not one long transaction.
    atomic = False

    dependencies = [
        ("logs", "0012_log_indexes_earn_their_place"),
    ]

    operations = [migrations.RunPython(compression_set, compression_reset)]
