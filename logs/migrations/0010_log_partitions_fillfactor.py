"""Room for heap-only updates: the fillfactor of logs.partitions.FILLFACTORS on every partition
that exists of the tables whose rows event_record updates (notifications and deliveries);
day partitions built from now on get it when they are created (logs/partitions.py).

PostgreSQL takes storage parameters per partition only: a partitioned parent refuses them
("unrecognized parameter", PostgreSQL 15 to 18). `ALTER TABLE … SET (fillfactor = …)` is a
catalog change under SHARE UPDATE EXCLUSIVE, which no reader or writer conflicts with, and
rewrites nothing: pages filled from now on keep the room, existing full pages stay as they
are (today's and the days created ahead are mostly empty, so they get it where it counts).
Each statement still runs under a short lock_timeout and is retried (a VACUUM of the
partition holds the same lock), and the whole runs under the partition managers' advisory
lock, so no day is created meanwhile by a process still running the old code.
"""

import time

from django.conf import settings
from django.db import migrations
from django.db.utils import OperationalError

# As logs.partitions had them when this was written (a migration keeps its own copy).
_FILLFACTORS = {"logs_notification": 90, "logs_delivery": 90}
_ADVISORY_LOCK_KEY = 0x6C6F6773  # logs.partitions._ADVISORY_LOCK_KEY
_ATTEMPTS = 20


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


def _each_partition(schema_editor, setting: str) -> None:
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
        try:
            cursor.execute("SET lock_timeout = %s", [f"{settings.LOG_PARTITION_LOCK_TIMEOUT_MS}ms"])
            for table, fillfactor in _FILLFACTORS.items():
                for partition in _partitions(cursor, table):
                    _retrying(
                        cursor,
                        f"ALTER TABLE {quote(partition)} " + setting.format(fillfactor=fillfactor),
                    )
            cursor.execute("RESET lock_timeout")
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_LOCK_KEY])


def fillfactor_set(apps, schema_editor) -> None:
    _each_partition(schema_editor, "SET (fillfactor = {fillfactor})")


def fillfactor_reset(apps, schema_editor) -> None:
    _each_partition(schema_editor, "RESET (fillfactor)")


class Migration(migrations.Migration):
    # One short statement per partition, each retried on its own: not one long transaction.
    atomic = False

    dependencies = [
        ("logs", "0009_in_app_opened_and_clicked"),
    ]

    operations = [migrations.RunPython(fillfactor_set, fillfactor_reset)]
