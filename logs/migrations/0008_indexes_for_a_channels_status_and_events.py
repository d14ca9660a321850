"""Indexes for a channel searched with its status or an event ("SMS + Failure", "SMS + Failed -
Undelivered"): logs/selectors.py reads them newest first, one range per channel (and per
delivery state).

The log is big and written all the time, so the indexes are built as docs/architecture.md asks of index
changes on the log: concurrently, one partition at a time. PostgreSQL cannot build an index
on a partitioned table CONCURRENTLY, so each one is made in three steps: an empty, invalid
index on the parent alone (`ON ONLY`: catalog work under a short lock_timeout, retried), then
for each partition an index built CONCURRENTLY (writers go on) and attached to it; once every
partition has one PostgreSQL marks the parent's valid. A partition attached meanwhile (beat
creating a day) gets its index from the ATTACH itself. A build that was interrupted leaves an
invalid index behind, which the next run drops and builds again: the migration can be run
until it completes.
"""

import time

from django.conf import settings
from django.db import migrations, models
from django.db.utils import OperationalError

_INDEXES = {
    "delivery": models.Index(
        models.F("environment"),
        models.F("channel"),
        models.F("state"),
        models.F("reports_delivery"),
        models.OrderBy(models.F("notification_created_at"), descending=True),
        models.OrderBy(models.F("notification"), descending=True),
        name="delivery_env_channel_state",
    ),
    "event": [
        models.Index(
            models.F("environment"),
            models.F("channel"),
            models.F("kind"),
            models.OrderBy(models.F("notification_created_at"), descending=True),
            models.OrderBy(models.F("notification"), descending=True),
            name="event_env_channel_kind",
        ),
        models.Index(
            models.F("environment"),
            models.F("channel"),
            models.F("sub_kind"),
            models.OrderBy(models.F("notification_created_at"), descending=True),
            models.OrderBy(models.F("notification"), descending=True),
            condition=models.Q(("sub_kind", ""), _negated=True),
            name="event_env_channel_sub_kind",
        ),
    ],
}
_ATTEMPTS = 20


def _each_index():
    for model_name, indexes in _INDEXES.items():
        for index in indexes if isinstance(indexes, list) else [indexes]:
            yield model_name, index


def _sql(schema_editor, model, index, *, table: str, name: str, concurrently: bool) -> str:
    # Django's own CREATE INDEX for the index, pointed at another table under another name.
    statement = index.create_sql(model, schema_editor, concurrently=concurrently)
    statement.rename_table_references(model._meta.db_table, table)
    statement.parts["name"] = schema_editor.quote_name(name)
    return str(statement)


def _retrying(cursor, statement: str, params=()) -> None:
    """A statement that takes a lock writers queue behind: a short lock_timeout, retried."""
    for attempt in range(_ATTEMPTS):
        try:
            cursor.execute(statement, params)
            return
        except OperationalError:
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _partitions(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid "
        "WHERE inhparent = %s::regclass AND child.relkind = 'r' ORDER BY child.relname",
        [table],
    )
    return [name for (name,) in cursor.fetchall()]


def _index_state(cursor, name: str) -> bool | None:
    """None when the index does not exist, else whether it is valid."""
    cursor.execute(
        "SELECT indisvalid FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid "
        "WHERE relname = %s AND relnamespace = current_schema()::regnamespace",
        [name],
    )
    row = cursor.fetchone()
    return None if row is None else row[0]


def _attached_partitions(cursor, parent_index: str) -> set[str]:
    cursor.execute(
        "SELECT tab.relname FROM pg_inherits "
        "JOIN pg_class idx ON idx.oid = inhrelid "
        "JOIN pg_index ON pg_index.indexrelid = idx.oid "
        "JOIN pg_class tab ON tab.oid = pg_index.indrelid "
        "WHERE inhparent = %s::regclass AND pg_index.indisvalid",
        [parent_index],
    )
    return {name for (name,) in cursor.fetchall()}


def _build(apps, schema_editor, model_name: str, index: models.Index) -> None:
    model = apps.get_model("logs", model_name)
    table = model._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        if _index_state(cursor, index.name):
            return  # built by an earlier run
        cursor.execute("SET lock_timeout = %s", [f"{settings.LOG_PARTITION_LOCK_TIMEOUT_MS}ms"])
        cursor.execute("SET statement_timeout = 0")  # a concurrent build takes its time
        parent = _sql(schema_editor, model, index, table=table, name=index.name, concurrently=False)
        parent = parent.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1)
        quoted = schema_editor.quote_name(table)
        _retrying(cursor, parent.replace(f"ON {quoted}", f"ON ONLY {quoted}", 1))
        for _ in range(_ATTEMPTS):
            missing = [
                partition
                for partition in _partitions(cursor, table)
                if partition not in _attached_partitions(cursor, index.name)
            ]
            if not missing:
                break
            for partition in missing:
                name = f"{partition}_{index.name}"[:63]
                if _index_state(cursor, name) is False:
                    # An interrupted concurrent build: its index is invalid, build it again.
                    cursor.execute(f"DROP INDEX CONCURRENTLY {schema_editor.quote_name(name)}")
                if _index_state(cursor, name) is None:
                    cursor.execute(
                        _sql(
                            schema_editor,
                            model,
                            index,
                            table=partition,
                            name=name,
                            concurrently=True,
                        )
                    )
                _retrying(
                    cursor,
                    f"ALTER INDEX {schema_editor.quote_name(index.name)} "
                    f"ATTACH PARTITION {schema_editor.quote_name(name)}",
                )
        cursor.execute("RESET lock_timeout")
        cursor.execute("RESET statement_timeout")
        if not _index_state(cursor, index.name):
            raise RuntimeError(
                f"The index {index.name} is not valid yet (partitions kept being added or "
                "failed to build): run migrate again."
            )


def indexes_build(apps, schema_editor) -> None:
    for model_name, index in _each_index():
        _build(apps, schema_editor, model_name, index)


def indexes_drop(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        for _, index in _each_index():
            # Dropping the parent's index drops every partition's with it.
            cursor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(index.name)}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [
        ("logs", "0007_email_index_includes_email"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name=model_name, index=index)
                for model_name, index in _each_index()
            ],
            database_operations=[migrations.RunPython(indexes_build, indexes_drop)],
        )
    ]
