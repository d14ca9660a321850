"""Partition changes never stall the writers.

Real connections: writer threads (each with its own database connection) record events the
way callbacks do, through event_record (lock the notification, read its events, insert one,
update the delivery and the notification), on several days, one of them stranded in DEFAULT;
a reader holds a long transaction over the log tables; meanwhile the partition manager
creates days, moves the stranded rows into their new day and drops days past retention,
again and again like beat, until it is done. No writer may fail (a deadlock, a row not
found, a partition-constraint error), no write may be lost, and no writer may wait for a
lock longer than the lock budget plus a margin: their connections' lock_timeout, so such a
wait is an error. (How long writers take during partition changes is measured in bench/, not
bounded here.)
"""

import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from logs.models import Event
from logs.partitions import (
    PARTITIONED_TABLES,
    PartitionBusy,
    partition_create,
    partition_drop,
    partition_list,
    partition_name,
    partitions_before,
    partitions_ensure,
)
from logs.retention import retention_purge
from logs.services import event_record, notification_create
from tests.factories import EnvironmentFactory

LOCK_BUDGET_MS = 300
# The writers' lock_timeout: the budget, plus the milliseconds of moving stranded rows and a
# holder descheduled on a loaded machine. Before the change a writer waited for the whole of
# the long reader (5 s) or died in a deadlock.
WRITER_LOCK_TIMEOUT_MS = LOCK_BUDGET_MS + 2_000
READER_HOLDS_SECONDS = 5.0
WRITERS = 3


def _today():
    return datetime.now(UTC).date()


def _first_missing_day_after(offset: int):
    """The first day after today + offset that has no partition (earlier tests may have
    left some: transactional tests run on real tables)."""
    names = {p.name for p in partition_list("logs_event")}
    day = _today() + timedelta(days=offset + 1)
    while partition_name("logs_event", day) in names:
        day += timedelta(days=1)
    return day


def _noon(offset: int) -> datetime:
    return datetime.combine(_today() + timedelta(days=offset), datetime.min.time(), UTC) + (
        timedelta(hours=12)
    )


def _where(notification_ids) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, count(*) FROM logs_event "
            "WHERE notification_id = ANY(%s) GROUP BY 1",
            [list(notification_ids)],
        )
        return dict(cursor.fetchall())


class Writers:
    """Threads recording events on the given notifications until stopped. With
    `lock_timeout_ms`, a writer's lock wait longer than that is an error (LockNotAvailable)."""

    def __init__(self, notifications, *, lock_timeout_ms: int | None = None) -> None:
        self.notifications = notifications
        self.lock_timeout_ms = lock_timeout_ms
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.calls: list[tuple[float, float]] = []  # (start, end) of each call, monotonic
        self.recorded: list[str] = []  # provider event ids event_record said it wrote
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(WRITERS)]

    def _run(self, number: int) -> None:
        calls = 0
        try:
            if self.lock_timeout_ms is not None:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT set_config('lock_timeout', %s, false)",
                        [f"{self.lock_timeout_ms}ms"],
                    )
            while not self.stop.is_set() and calls < 5_000:
                notification = self.notifications[(number + calls) % len(self.notifications)]
                event_id = f"w{number}-{calls}"
                started = time.monotonic()
                recorded = event_record(
                    notification_id=notification.id,
                    # Half the calls name the partition key (one day's partition), half do
                    # not (every partition, DEFAULT included), as callbacks may.
                    notification_created_at=notification.created_at if calls % 2 else None,
                    kind="sent", channel="email", source="sandbox", provider_event_id=event_id,
                )  # fmt: skip
                with self.lock:
                    self.calls.append((started, time.monotonic()))
                    if recorded.created:
                        self.recorded.append(event_id)
                calls += 1
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


def _long_reader(started: threading.Event) -> None:
    """A console export or report: one transaction reading every partition for seconds."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT count(*) FROM logs_notification")
            cursor.execute("SELECT count(*) FROM logs_delivery")
            cursor.execute("SELECT count(*) FROM logs_event")
            started.set()
            time.sleep(READER_HOLDS_SECONDS)
            cursor.execute("COMMIT")
    finally:
        started.set()
        connection.close()


def _done(stranded_day, future_day, old_day) -> bool:
    for table in PARTITIONED_TABLES:
        names = {p.name for p in partition_list(table)}
        if {partition_name(table, stranded_day), partition_name(table, future_day)} - names:
            return False
        if partition_name(table, old_day) in names:
            return False
    return True


def _drop_days_not_in(before: set[str]) -> None:
    # Transactional test on real tables: leave no day behind for the tests after this one.
    for table in PARTITIONED_TABLES:
        for partition in partition_list(table):
            if partition.is_day and partition.name not in before:
                partition_drop(partition)


@pytest.mark.django_db(transaction=True)
def test_partition_changes_never_stall_or_break_event_writers(settings, caplog):
    settings.LOG_PARTITION_LOCK_TIMEOUT_MS = LOCK_BUDGET_MS
    before = {p.name for table in PARTITIONED_TABLES for p in partition_list(table)}
    environment = EnvironmentFactory()
    partitions_ensure(days_ahead=1, start=_today() - timedelta(days=10))

    def notification(offset: int):
        return notification_create(
            environment_id=environment.id, notification_type="welcome", user_id="u",
            created_at=_noon(offset),
        )  # fmt: skip

    old = [notification(-9) for _ in range(3)]  # past retention (7 days): dropped
    stranded_offset = 20  # no partition: lands in DEFAULT until its day is created
    live = [notification(offset) for offset in (0, -1, -3, stranded_offset) for _ in range(3)]
    stranded_day = _today() + timedelta(days=stranded_offset)
    future_day = _first_missing_day_after(settings.LOG_PARTITIONS_AHEAD)
    days_ahead = (future_day - _today()).days
    old_day = _today() - timedelta(days=9)
    assert not _done(stranded_day, future_day, old_day)

    try:
        with Writers(live, lock_timeout_ms=WRITER_LOCK_TIMEOUT_MS) as writers:
            time.sleep(0.5)  # writers under way
            reader_started = threading.Event()
            reader = threading.Thread(target=_long_reader, args=(reader_started,))
            reader.start()
            reader_started.wait(timeout=30)
            deadline = time.monotonic() + 120
            # Beat, impatient: ensure and purge again and again until both are done.
            while not _done(stranded_day, future_day, old_day) and time.monotonic() < deadline:
                partitions_ensure(days_ahead=days_ahead)
                retention_purge(retention_days=7)
                if writers.errors:
                    break
            time.sleep(0.5)  # writers go on after the last change
        reader.join(timeout=60)

        # No error: nobody waited for a lock longer than WRITER_LOCK_TIMEOUT_MS either.
        assert not writers.errors, writers.errors
        # The long reader held locks the manager needed: it gave way rather than wait.
        assert any("retries" in record.getMessage() for record in caplog.records)
        assert _done(stranded_day, future_day, old_day)
        # No lost write: every event a writer recorded is there, each in its day partition.
        stored = set(
            key.removeprefix("sandbox:")
            for key in Event.objects.filter(dedupe_key__startswith="sandbox:w").values_list(
                "dedupe_key", flat=True
            )
        )
        assert len(writers.recorded) > 50
        assert stored == set(writers.recorded)
        stranded_ids = [n.id for n in live if n.created_at.date() == stranded_day]
        assert set(_where(stranded_ids)) == {partition_name("logs_event", stranded_day)}
        assert not _where([n.id for n in old])
    finally:
        _drop_days_not_in(before)


def _strand_a_busy_day(environment_id: int, created_at: datetime, rows: int) -> None:
    """A day of traffic that went to DEFAULT (beat was down): moving it takes a while."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO logs_notification (id, environment_id, notification_type, user_id, "
            "email, number, timezone, merge_tags, request, status, created_at, updated_at, "
            "idempotency_key) SELECT gen_random_uuid(), %s, 'welcome', 'bulk', '', '', '', "
            "'{}', '{}', 'received', %s, %s, '' FROM generate_series(1, %s)",
            [environment_id, created_at, created_at, rows],
        )
        cursor.execute(
            "INSERT INTO logs_event (notification_id, notification_created_at, environment_id, "
            "kind, sub_kind, channel, occurred_at, recorded_at, source, provider_event_id, "
            "dedupe_key, detail) SELECT id, created_at, environment_id, 'received', '', '', "
            "created_at, created_at, 'api', '', 'received', '' FROM logs_notification "
            "WHERE user_id = 'bulk' AND environment_id = %s",
            [environment_id],
        )


def _wait_for_records(writers: Writers, count: int) -> None:
    deadline = time.monotonic() + 60  # a guard against hanging, not a bound on speed
    while len(writers.recorded) < count and not writers.errors:
        assert time.monotonic() < deadline, f"writers recorded {len(writers.recorded)} events"
        time.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_writers_of_a_day_moved_out_of_default_lose_nothing(settings):
    """While a stranded day moves out of DEFAULT, writers of that very day keep recording:
    none may find its notification missing or have its insert refused (which is what a
    lock on DEFAULT alone allows: their statements were planned before the ATTACH)."""
    settings.LOG_PARTITION_LOCK_TIMEOUT_MS = LOCK_BUDGET_MS
    before = {p.name for table in PARTITIONED_TABLES for p in partition_list(table)}
    environment = EnvironmentFactory()
    offset = 30
    day = _today() + timedelta(days=offset)
    live = [
        notification_create(
            environment_id=environment.id, notification_type="welcome", user_id="u",
            created_at=_noon(offset) + timedelta(seconds=n),
        )
        for n in range(6)
    ]  # fmt: skip
    # Enough rows that the move takes a while and writers queue behind it; few enough that
    # on a loaded machine it stays well inside the connections' 5 s lock_timeout
    # (DATABASE_LOCK_TIMEOUT), which a writer would otherwise hit.
    _strand_a_busy_day(environment.id, _noon(offset), rows=10_000)
    try:
        with Writers(live) as writers:
            _wait_for_records(writers, 10)  # under way, their statements planned
            move_started = time.monotonic()
            created = partitions_ensure(days_ahead=0, start=_today())
            move_ended = time.monotonic()
            _wait_for_records(writers, len(writers.recorded) + 10)  # and going on after it
        assert not writers.errors, writers.errors
        # The writes overlapped the move: one began before it ended and ended after it began,
        # and others ran wholly before and wholly after it.
        assert any(start < move_ended and end > move_started for start, end in writers.calls)
        assert any(end < move_started for _, end in writers.calls)
        assert any(start > move_ended for start, _ in writers.calls)
        assert partition_name("logs_event", day) in created
        stored = set(
            key.removeprefix("sandbox:")
            for key in Event.objects.filter(dedupe_key__startswith="sandbox:w").values_list(
                "dedupe_key", flat=True
            )
        )
        assert stored == set(writers.recorded) and writers.recorded
        assert set(_where([n.id for n in live])) == {partition_name("logs_event", day)}
    finally:
        _drop_days_not_in(before)


# Before the change a partition change waited for the reader however long it read: the
# reader lets go after this, so such a test fails on time instead of hanging.
READER_GIVES_UP_SECONDS = 10.0


@contextmanager
def _reading(statement: str):
    """Another connection holding a transaction open after `statement`, until the block ends."""
    ready, release = threading.Event(), threading.Event()

    def hold():
        try:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(statement)
                ready.set()
                release.wait(timeout=READER_GIVES_UP_SECONDS)
                cursor.execute("COMMIT")
        finally:
            ready.set()
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait(timeout=30)
    try:
        yield
    finally:
        release.set()
        thread.join(timeout=30)


def _tables_named(name: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname = %s", [name])
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_creating_a_day_gives_way_to_a_long_reader_and_leaves_nothing_half_made(settings, caplog):
    settings.LOG_PARTITION_LOCK_TIMEOUT_MS = 100
    before = {p.name for table in PARTITIONED_TABLES for p in partition_list(table)}
    ahead = (_first_missing_day_after(settings.LOG_PARTITIONS_AHEAD) - _today()).days
    day = _first_missing_day_after(ahead + 30)
    try:
        with _reading("SELECT count(*) FROM logs_event"):
            started = time.monotonic()
            with pytest.raises(PartitionBusy, match="100 ms"):
                partition_create(day=day)
            assert time.monotonic() - started < READER_GIVES_UP_SECONDS / 2
            assert not _tables_named(partition_name("logs_event", day))
            assert not _tables_named(partition_name("logs_notification", day))
            # beat's hourly run: skips the busy day with a warning, raises nothing
            assert partitions_ensure(days_ahead=ahead) == []
            assert "the next run retries" in caplog.text
        assert len(partition_create(day=day)) == len(PARTITIONED_TABLES)
        assert len(partitions_ensure(days_ahead=ahead)) == len(PARTITIONED_TABLES)
        assert partition_name("logs_event", day) in {p.name for p in partition_list("logs_event")}
    finally:
        _drop_days_not_in(before)


@pytest.mark.django_db(transaction=True)
def test_purge_gives_way_to_a_long_reader_and_a_later_run_finishes(settings, caplog):
    settings.LOG_PARTITION_LOCK_TIMEOUT_MS = 100
    before = {p.name for table in PARTITIONED_TABLES for p in partition_list(table)}
    old_day = _today() - timedelta(days=9)
    partitions_ensure(days_ahead=0, start=old_day)
    try:
        with _reading("SELECT count(*) FROM logs_notification"):
            started = time.monotonic()
            purge = retention_purge(retention_days=7)
            assert time.monotonic() - started < READER_GIVES_UP_SECONDS / 2
        assert partition_name("logs_notification", old_day) in {p.name for p in purge.busy}
        assert partition_name("logs_event", old_day) in {p.name for p in purge.partitions}
        assert f"Log partition {partition_name('logs_notification', old_day)} not dropped" in (
            caplog.text
        )
        again = retention_purge(retention_days=7)
        assert partition_name("logs_notification", old_day) in {p.name for p in again.partitions}
        assert not again.busy
        cutoff = datetime.combine(_today() - timedelta(days=7), datetime.min.time(), UTC)
        assert not any(partitions_before(table, cutoff) for table in PARTITIONED_TABLES)
    finally:
        _drop_days_not_in(before)


@pytest.mark.django_db(transaction=True)
def test_a_day_detached_but_not_dropped_is_dropped_by_the_next_purge(settings):
    """Dropping a day's table drops its foreign key, which locks accounts_environment: an
    open transaction reading environments makes the drop give way after the detach."""
    settings.LOG_PARTITION_LOCK_TIMEOUT_MS = 100
    before = {p.name for table in PARTITIONED_TABLES for p in partition_list(table)}
    old_day = _today() - timedelta(days=9)
    partitions_ensure(days_ahead=0, start=old_day)
    name = partition_name("logs_event", old_day)
    [partition] = [p for p in partition_list("logs_event") if p.name == name]
    with connection.cursor() as cursor:  # not ours: same shape, never marked by a purge
        cursor.execute("CREATE TABLE logs_event_p19990101 (LIKE logs_event)")
    try:
        with (
            _reading("SELECT count(*) FROM accounts_environment"),
            pytest.raises(PartitionBusy, match="dropping"),
        ):
            partition_drop(partition)
        assert name not in {p.name for p in partition_list("logs_event")}  # detached
        assert _tables_named(name)  # but still there
        retention_purge(retention_days=7)
        assert not _tables_named(name)
        assert _tables_named("logs_event_p19990101")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS logs_event_p19990101")
        _drop_days_not_in(before)


@pytest.mark.django_db(transaction=True)
def test_nightly_purge_retries_a_busy_day_then_leaves_it_for_the_next_night(
    settings, caplog, monkeypatch
):
    from logs.tasks import PURGE_RETRIES, retention_purge_task

    settings.LOG_PARTITION_LOCK_TIMEOUT_MS = 50
    settings.LOG_RETENTION_DAYS = 7
    before = {p.name for table in PARTITIONED_TABLES for p in partition_list(table)}
    old_day = _today() - timedelta(days=9)
    partitions_ensure(days_ahead=0, start=old_day)
    busy = partition_name("logs_notification", old_day)
    # Run here, not by a worker, Celery runs a retry at once, inside the first run: start at
    # the last retry but one, so the retry is the last and leaves the day for the next night.
    monkeypatch.setitem(retention_purge_task.app.conf, "task_eager_propagates", False)
    try:
        with _reading("SELECT count(*) FROM logs_notification"):
            retention_purge_task.apply(retries=PURGE_RETRIES - 1)
        messages = [record.getMessage() for record in caplog.records]
        assert any(busy in m and "retrying in 900 s" in m for m in messages), messages
        assert any(busy in m and "left for the next night" in m for m in messages), messages
        assert busy in {p.name for p in partition_list("logs_notification")}
        assert partition_name("logs_event", old_day) not in {
            p.name for p in partition_list("logs_event")
        }
    finally:
        _drop_days_not_in(before)
