"""logs.migration_operations on the real partitioned log: an index built online ends valid on
every partition, a run stopped half-way is finished by running it again, and the operations
refuse to run inside the migration's transaction."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, models, transaction
from django.db.migrations.executor import MigrationExecutor

from logs.migration_operations import (
    PartitionedIndexAdd,
    PartitionedIndexRemove,
    PartitionedIndexReplace,
)
from logs.partitions import PARTITIONED_TABLES, partition_list, partitions_ensure
from logs.services import notification_create
from tests.factories import EnvironmentFactory
from tests.logs.test_partition_concurrency import _drop_days_not_in, _strand_a_busy_day

INDEX = models.Index(models.F("environment"), models.F("user_id"), name="notif_test_online")


@pytest.fixture
def log_with_rows():
    before = {p.name for table in PARTITIONED_TABLES for p in partition_list(table)}
    today = datetime.now(UTC).date()
    partitions_ensure(days_ahead=1, start=today - timedelta(days=1))
    environment = EnvironmentFactory()
    noon = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=12)
    _strand_a_busy_day(environment.id, noon, 2_000)
    yield [p.name for p in partition_list("logs_notification")]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {INDEX.name}")
    _drop_days_not_in(before)


def _run(operation, *, backwards: bool = False, atomic: bool = False) -> None:
    before = MigrationExecutor(connection).loader.project_state()
    after = before.clone()
    operation.state_forwards("logs", after)
    with connection.schema_editor(atomic=atomic) as editor:
        if backwards:
            operation.database_backwards("logs", editor, after, before)
        else:
            operation.database_forwards("logs", editor, before, after)


def _indexes(name: str) -> dict[str, tuple[bool, str]]:
    """The parent's index `name` and the partitions' attached to it: table -> (valid, def)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tab.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class tab ON tab.oid = i.indrelid "
            "WHERE i.indexrelid = to_regclass(%s) OR i.indexrelid IN ("
            "  SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%s))",
            [name, name],
        )
        return {table: (valid, definition) for table, valid, definition in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_an_index_added_online_is_valid_on_every_partition_and_removed_again(log_with_rows):
    _run(PartitionedIndexAdd(model_name="notification", index=INDEX))

    built = _indexes(INDEX.name)
    assert set(built) == {"logs_notification", *log_with_rows}
    assert all(valid for valid, _ in built.values())
    assert "(environment_id, user_id)" in built["logs_notification"][1]

    _run(PartitionedIndexRemove(model_name="notification", name=INDEX.name))
    assert _indexes(INDEX.name) == {}
    _run(PartitionedIndexAdd(model_name="notification", index=INDEX))
    _run(PartitionedIndexAdd(model_name="notification", index=INDEX), backwards=True)
    assert _indexes(INDEX.name) == {}


@pytest.mark.django_db(transaction=True)
def test_a_build_stopped_half_way_is_finished_by_running_it_again(log_with_rows):
    # What a killed `migrate` leaves: the parent's index (invalid, ON ONLY), one partition done
    # and attached, and on today's partition the invalid leftover of a failed concurrent build
    # under the name the operation gives it.
    today = next(name for name in log_with_rows if name.endswith(f"{datetime.now(UTC):%Y%m%d}"))
    done = next(name for name in log_with_rows if name not in (today, "logs_notification_default"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX {INDEX.name} ON ONLY logs_notification (environment_id, user_id)"
        )
        cursor.execute(
            f"CREATE INDEX CONCURRENTLY {done}_{INDEX.name} ON {done} (environment_id, user_id)"
        )
        cursor.execute(f"ALTER INDEX {INDEX.name} ATTACH PARTITION {done}_{INDEX.name}")
        with pytest.raises(Exception, match="could not create unique index"):
            # Many rows share an environment: the build fails and leaves its index, invalid.
            cursor.execute(
                f"CREATE UNIQUE INDEX CONCURRENTLY {today}_{INDEX.name} ON {today} (environment_id)"
            )
    left = _indexes(INDEX.name)
    assert left["logs_notification"][0] is False

    _run(PartitionedIndexAdd(model_name="notification", index=INDEX))

    built = _indexes(INDEX.name)
    assert set(built) == {"logs_notification", *log_with_rows}
    assert all(valid for valid, _ in built.values())
    assert "UNIQUE" not in built[today][1]  # the leftover was dropped and built anew


@pytest.mark.django_db(transaction=True)
def test_a_replacement_swaps_the_index_and_a_second_run_changes_nothing(log_with_rows):
    _run(PartitionedIndexAdd(model_name="notification", index=INDEX))
    wider = models.Index(
        models.F("environment"), models.F("user_id"), models.F("created_at"), name=INDEX.name
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)::oid", [INDEX.name])
        (first,) = cursor.fetchone()

    _run(PartitionedIndexReplace(model_name="notification", index=wider))
    replaced = _indexes(INDEX.name)
    assert all(valid for valid, _ in replaced.values())
    assert "(environment_id, user_id, created_at)" in replaced["logs_notification"][1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)::oid", [INDEX.name])
        (second,) = cursor.fetchone()
        assert second != first
        # The partitions' indexes carry the index's own name again, not the builder's.
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE %s", ["%_next"])
        assert cursor.fetchone()[0] == 0

    _run(PartitionedIndexReplace(model_name="notification", index=wider))  # already in place
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)::oid", [INDEX.name])
        assert cursor.fetchone()[0] == second


@pytest.mark.django_db(transaction=True)
def test_an_online_index_change_refuses_a_transaction(log_with_rows):
    with pytest.raises(RuntimeError, match="set `atomic = False` on the migration"):
        _run(PartitionedIndexAdd(model_name="notification", index=INDEX), atomic=True)
    assert _indexes(INDEX.name) == {}


def _dedupe_constraint_replaced(*, backwards: bool) -> None:
    """logs 0016's operation, run from the state before it (backwards: back to that state)."""
    migration = MigrationExecutor(connection).loader.get_migration(
        "logs", "0016_event_dedupe_key_hashed"
    )
    (operation,) = migration.operations
    before = MigrationExecutor(connection).loader.project_state(("logs", "0015_citus_distribute"))
    after = before.clone()
    operation.state_forwards("logs", after)
    with connection.schema_editor(atomic=False) as editor:
        if backwards:
            operation.database_backwards("logs", editor, after, before)
        else:
            operation.database_forwards("logs", editor, before, after)


def _second_event_refused(environment, first: str, second: str) -> bool:
    """Whether, after an event keyed `first`, one keyed `second` for the same notification
    is refused."""
    notification = notification_create(
        environment_id=environment.id, notification_type="welcome", user_id="u"
    )
    columns = (
        "notification_id, notification_created_at, environment_id, kind, sub_kind, channel, "
        "occurred_at, recorded_at, source, provider_event_id, dedupe_key, detail"
    )
    insert = f"INSERT INTO logs_event ({columns}) VALUES ({', '.join(['%s'] * 12)})"

    def row(key: str) -> list:
        created = notification.created_at
        return [notification.id, created, environment.id, "sent", "", "email", created, created,
                "test", "", key, ""]  # fmt: skip

    with connection.cursor() as cursor:
        cursor.execute(insert, row(first))
        try:
            with transaction.atomic():
                cursor.execute(insert, row(second))
        except IntegrityError:
            return True
    return False


@pytest.mark.django_db(transaction=True)
def test_the_dedupe_constraint_becomes_a_hashed_unique_index_online_and_back(log_with_rows):
    """logs 0016: event_unique_dedupe, a constraint over the key, is swapped for a unique
    index over the key's hash on every partition; both refuse the same event twice, and
    reversing brings the key back (as a unique index of the same columns)."""
    environment = EnvironmentFactory()
    hashed = "hashtextextended((dedupe_key)::text, (0)::bigint)"
    events = ["logs_event", *(p.name for p in partition_list("logs_event"))]

    _dedupe_constraint_replaced(backwards=True)
    old = _indexes("event_unique_dedupe")
    assert set(old) == set(events)
    assert all(valid for valid, _ in old.values())
    assert (
        "(notification_id, dedupe_key, notification_created_at, environment_id)"
        in (old["logs_event"][1])
    )
    assert _second_event_refused(environment, "sendgrid:abc", "sendgrid:abc")
    assert not _second_event_refused(environment, "sendgrid:abc", "sendgrid:abd")

    _dedupe_constraint_replaced(backwards=False)
    new = _indexes("event_unique_dedupe")
    assert set(new) == set(events)
    assert all(valid for valid, _ in new.values())
    assert all("CREATE UNIQUE INDEX" in definition for _, definition in new.values())
    assert all(hashed in definition for _, definition in new.values()), new
    assert _second_event_refused(environment, "sendgrid:abc", "sendgrid:abc")
    assert not _second_event_refused(environment, "sendgrid:abc", "sendgrid:abd")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE %s", ["%_next"])
        assert cursor.fetchone()[0] == 0

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('event_unique_dedupe')::oid")
        (first,) = cursor.fetchone()
    _dedupe_constraint_replaced(backwards=False)  # already in place: nothing is rebuilt
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('event_unique_dedupe')::oid")
        assert cursor.fetchone()[0] == first
