"""inbox_adopt's index covers what it looks through: the rows waiting for a message, orphaned
or pending with their ids parsed (the old one held orphaned rows only, so the adopt lookup
read every pending row of every day through another index).

The inbox is partitioned by day and written all the time, so the index is built as the log's
are (logs/migrations/0008_indexes_for_a_channels_status_and_events.py): PostgreSQL cannot
build an index on a partitioned table CONCURRENTLY, so an empty, invalid index is made on the
parent alone (`ON ONLY`, under a short lock_timeout, retried), then each partition's is built
CONCURRENTLY and attached; once every partition has one the parent's is valid. An interrupted
run leaves an invalid index, which the next run drops and builds again. The old index goes
last: a catalog change under the same short lock_timeout.
"""

import time

import django.contrib.postgres.indexes
from django.conf import settings
from django.db import migrations, models
from django.db.utils import OperationalError

INDEX = django.contrib.postgres.indexes.GinIndex(
    models.F("message_ids"),
    condition=models.Q(("state__in", ["orphaned", "pending"])) & ~models.Q(("message_ids", [])),
    name="inbox_adopt_ids",
)
OLD_INDEX = django.contrib.postgres.indexes.GinIndex(
    models.F("message_ids"),
    condition=models.Q(("state", "orphaned")),
    name="inbox_orphan_ids",
)
_ATTEMPTS = 20


def _sql(schema_editor, model, index, *, table: str, name: str, concurrently: bool) -> str:
    # Django's own CREATE INDEX for the index, pointed at another table under another name.
    statement = index.create_sql(model, schema_editor, concurrently=concurrently)
    statement.rename_table_references(model._meta.db_table, table)
    statement.parts["name"] = schema_editor.quote_name(name)
    return str(statement)


def _retrying(cursor, statement: str) -> None:
    """A statement that takes a lock writers queue behind: a short lock_timeout, retried."""
    for attempt in range(_ATTEMPTS):
        try:
            cursor.execute(statement)
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


def _build(schema_editor, model, index) -> None:
    table = model._meta.db_table
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        if _index_state(cursor, index.name):
            return  # built by an earlier run
        cursor.execute("SET lock_timeout = %s", [f"{settings.LOG_PARTITION_LOCK_TIMEOUT_MS}ms"])
        cursor.execute("SET statement_timeout = 0")  # a concurrent build takes its time
        parent = _sql(schema_editor, model, index, table=table, name=index.name, concurrently=False)
        parent = parent.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1)
        _retrying(cursor, parent.replace(f"ON {quote(table)}", f"ON ONLY {quote(table)}", 1))
        for _ in range(_ATTEMPTS):
            attached = _attached_partitions(cursor, index.name)
            missing = [p for p in _partitions(cursor, table) if p not in attached]
            if not missing:
                break
            for partition in missing:
                name = f"{partition}_{index.name}"[:63]
                if _index_state(cursor, name) is False:
                    # An interrupted concurrent build: its index is invalid, build it again.
                    cursor.execute(f"DROP INDEX CONCURRENTLY {quote(name)}")
                if _index_state(cursor, name) is None:
                    cursor.execute(
                        _sql(schema_editor, model, index, table=partition, name=name,
                             concurrently=True)
                    )  # fmt: skip
                _retrying(cursor, f"ALTER INDEX {quote(index.name)} ATTACH PARTITION {quote(name)}")
        cursor.execute("RESET lock_timeout")
        cursor.execute("RESET statement_timeout")
        if not _index_state(cursor, index.name):
            raise RuntimeError(
                f"The index {index.name} is not valid yet (partitions kept being added or "
                "failed to build): run migrate again."
            )


def _drop(schema_editor, index) -> None:
    # Dropping the parent's index drops every partition's with it: a catalog change.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = %s", [f"{settings.LOG_PARTITION_LOCK_TIMEOUT_MS}ms"])
        _retrying(cursor, f"DROP INDEX IF EXISTS {schema_editor.quote_name(index.name)}")
        cursor.execute("RESET lock_timeout")


def adopt_index_build(apps, schema_editor) -> None:
    _build(schema_editor, apps.get_model("webhooks", "InboxEntry"), INDEX)
    _drop(schema_editor, OLD_INDEX)


def orphan_index_build(apps, schema_editor) -> None:
    _build(schema_editor, apps.get_model("webhooks", "InboxEntry"), OLD_INDEX)
    _drop(schema_editor, INDEX)


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="inboxentry", name=OLD_INDEX.name),
                migrations.AddIndex(model_name="inboxentry", index=INDEX),
            ],
            database_operations=[migrations.RunPython(adopt_index_build, orphan_index_build)],
        )
    ]
