"""An index migration on the log never stalls its writers.

Real connections: writer threads record events (event_record: lock the notification, insert an
event, update the delivery and the notification) and send new notifications, each connection
with a lock_timeout, so a writer that waits for a lock longer than that fails; a console export
holds a long transaction over the log meanwhile. While they run, `migrate` applies logs 0007
(the email index replaced by one that includes the email) to a log with rows in it. No writer
may fail and no write may take longer than the lock timeout.

The same harness applied to 0007 as it was first written (DROP INDEX and CREATE INDEX on the
partitioned parent in one transaction) sees writers fail: the drop queues behind the export
with every writer behind it, then the build holds every partition.
"""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.postgres.indexes import OpClass
from django.core.management import call_command
from django.db import connection, migrations, models
from django.db.migrations.executor import MigrationExecutor
from django.db.models.functions import Lower

from logs.models import Delivery, Event, Notification
from logs.partitions import PARTITIONED_TABLES, partition_list, partitions_ensure
from logs.services import notification_create
from tests.factories import EnvironmentFactory
from tests.logs.test_partition_concurrency import (
    Writers,
    _drop_days_not_in,
    _long_reader,
    _strand_a_busy_day,
)

# The writers' lock_timeout, and so the longest any write may take.
WRITER_LOCK_TIMEOUT_MS = 2_000
# A day of traffic already in the log: each partition's index takes a while to build.
ROWS = 50_000


class NotificationSenders:
    """Threads sending notifications until stopped, each connection with the lock_timeout."""

    def __init__(self, environment_id: int, *, threads: int = 2) -> None:
        self.environment_id = environment_id
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.calls: list[tuple[float, float]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, false)", [f"{WRITER_LOCK_TIMEOUT_MS}ms"]
                )
            while not self.stop.is_set():
                started = time.monotonic()
                notification_create(
                    environment_id=self.environment_id,
                    notification_type="welcome",
                    user_id="sender",
                    email="Someone@Example.com",
                    # Not the request's own: stored, as the schema before logs 0021 (which
                    # these tests migrate back to) requires of every row.
                    merge_tags={"first_name": "Someone"},
                )
                with self.lock:
                    self.calls.append((started, time.monotonic()))
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connection.close()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def _old_0007() -> None:
    """logs 0007 as it was first written: RemoveIndex and AddIndex in one transaction."""
    state = MigrationExecutor(connection).loader.project_state(("logs", "0006_purge_run"))
    operations = [
        migrations.RemoveIndex(model_name="notification", name="notif_env_email"),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                models.F("environment"),
                OpClass(Lower("email"), name="text_pattern_ops"),
                models.OrderBy(models.F("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                include=("email",),
                name="notif_env_email",
            ),
        ),
    ]
    with connection.schema_editor(atomic=True) as editor:
        for operation in operations:
            after = state.clone()
            operation.state_forwards("logs", after)
            operation.database_forwards("logs", editor, state, after)
            state = after


def _index_swap_under_load(apply, *, start: str = "0006") -> tuple[list[BaseException], float, int]:
    """Run `apply` (from logs `start`, e.g. to 0007) while writers write and an export reads;
    the writers' errors, their longest call in seconds and how many calls they made
    meanwhile."""
    environment = EnvironmentFactory()
    today = datetime.now(UTC).date()
    noon = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=12)
    _strand_a_busy_day(environment.id, noon, ROWS)  # into today's partition
    live = [
        notification_create(
            environment_id=environment.id,
            notification_type="welcome",
            user_id="u",
            created_at=noon - timedelta(days=n % 2),
        )
        for n in range(6)
    ]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE logs_notification")
    call_command("migrate", "logs", start, verbosity=0)
    _columns_of_later_migrations_added()
    with (
        Writers(live, lock_timeout_ms=WRITER_LOCK_TIMEOUT_MS) as writers,
        NotificationSenders(environment.id) as senders,
    ):
        time.sleep(1)  # writers under way
        reader_started = threading.Event()
        reader = threading.Thread(target=_long_reader, args=(reader_started,))
        reader.start()
        reader_started.wait(timeout=30)
        started = time.monotonic()
        apply()
        ended = time.monotonic()
        time.sleep(0.5)  # writers go on after the change
    reader.join(timeout=60)
    calls = writers.calls + senders.calls
    during = [end - start for start, end in calls if end >= started and start <= ended]
    return writers.errors + senders.errors, max(during, default=0.0), len(during)


@pytest.fixture
def log_partitions():
    """Today's and yesterday's partitions; afterwards, days the test made are dropped and the
    log's migrations are all applied again."""
    before = {p.name for table in PARTITIONED_TABLES for p in partition_list(table)}
    partitions_ensure(days_ahead=1, start=datetime.now(UTC).date() - timedelta(days=1))
    yield
    _columns_of_later_migrations_removed()
    call_command("migrate", "logs", verbosity=0)
    _drop_days_not_in(before)


# The writers run today's code, which writes every column of today's models; migrating the log
# back to 0006 also took away the columns later migrations add. Those are put back (nullable,
# as their migrations add them) so that only the index change is under test, and taken away
# again before the log is migrated forward.
_ADDED: list[tuple[type[models.Model], models.Field]] = []


def _columns_of_later_migrations_added() -> None:
    with connection.cursor() as cursor:
        tables = {
            model: {c.name for c in connection.introspection.get_table_description(
                cursor, model._meta.db_table)}
            for model in (Notification, Delivery, Event)
        }  # fmt: skip
    with connection.schema_editor() as editor:
        for model, columns in tables.items():
            for field in model._meta.concrete_fields:
                if field.column not in columns:
                    editor.add_field(model, field)
                    _ADDED.append((model, field))


def _columns_of_later_migrations_removed() -> None:
    with connection.schema_editor() as editor:
        while _ADDED:
            editor.remove_field(*_ADDED.pop())


@pytest.mark.django_db(transaction=True)
def test_an_index_migration_applied_while_writers_write_never_stalls_them(log_partitions):
    errors, longest, calls = _index_swap_under_load(
        lambda: call_command("migrate", "logs", "0007", verbosity=0)
    )

    print(f"{calls} writes while 0007 ran, the longest {longest:.3f} s")
    assert not errors, errors  # no lock wait reached the writers' lock_timeout
    assert longest < WRITER_LOCK_TIMEOUT_MS / 1000, f"a write took {longest:.2f} s"
    assert calls > 20  # they did write while the index was swapped
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisvalid, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indexrelid = 'notif_env_email'::regclass"
        )
        valid, definition = cursor.fetchone()
    assert valid
    assert "INCLUDE (email)" in definition


@pytest.mark.django_db(transaction=True)
def test_the_harness_sees_the_first_0007_stall_writers(log_partitions):
    """The harness can fail: the old plain swap makes writers wait past their lock_timeout."""
    errors, longest, _ = _index_swap_under_load(_old_0007)

    assert errors or longest >= WRITER_LOCK_TIMEOUT_MS / 1000
    assert any("lock timeout" in str(error) for error in errors), errors


@pytest.mark.django_db(transaction=True)
def test_the_indexes_made_partial_or_hash_are_swapped_while_writers_write(log_partitions):
    """logs 0012 (docs/indexes.md): the message id's index becomes a hash, the status index
    partial, each built beside the old one and swapped in while writers write."""
    errors, longest, calls = _index_swap_under_load(
        lambda: call_command("migrate", "logs", "0012", verbosity=0)
    )

    assert not errors, errors
    assert longest < WRITER_LOCK_TIMEOUT_MS / 1000, f"a write took {longest:.2f} s"
    assert calls > 20
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, indisvalid, pg_get_indexdef(indexrelid) "
            "FROM pg_index WHERE indexrelid::regclass::text = ANY(%s)",
            [["delivery_provider_msg", "notif_env_status"]],
        )
        indexes = {name: (valid, definition) for name, valid, definition in cursor.fetchall()}
    assert all(valid for valid, _ in indexes.values()), indexes
    assert "USING hash" in indexes["delivery_provider_msg"][1]
    assert "WHERE (NOT ((status)::text = 'success'" in indexes["notif_env_status"][1]


@pytest.mark.django_db(transaction=True)
def test_the_dedupe_constraint_is_swapped_for_a_hashed_index_while_writers_write(
    log_partitions,
):
    """logs 0016 (docs/indexes.md): event_unique_dedupe indexes the key's hash, built beside
    the old constraint and swapped in while writers record events (the index they insert
    through: a write never waits past its lock timeout, and no event is refused)."""
    errors, longest, calls = _index_swap_under_load(
        lambda: call_command("migrate", "logs", "0016", verbosity=0), start="0015"
    )

    assert not errors, errors
    assert longest < WRITER_LOCK_TIMEOUT_MS / 1000, f"a write took {longest:.2f} s"
    assert calls > 20
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisvalid, indisunique, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indexrelid = 'event_unique_dedupe'::regclass"
        )
        valid, unique, definition = cursor.fetchone()
    assert valid and unique
    assert "hashtextextended((dedupe_key)::text, (0)::bigint)" in definition
