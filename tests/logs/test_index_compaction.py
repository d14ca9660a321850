"""The nightly index compaction (logs/index_compaction.py), on a real PostgreSQL log seeded
over three days: finished days' indexes shrink, today's are left alone, a second run does
nothing, a writer on the day being rebuilt never waits for a lock, and a failed rebuild's
leftover is dropped."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from demo.loader import seed_logs
from logs import index_compaction
from logs.index_compaction import COMPACTED_COMMENT, TABLES, index_compact
from logs.models import Notification
from logs.partitions import _ADVISORY_LOCK_KEY, PARTITIONED_TABLES, partition_list
from logs.tasks import index_compact_task
from tests.logs.test_partition_concurrency import Writers, _drop_days_not_in

NOTIFICATIONS = 3_000
WRITER_LOCK_TIMEOUT_MS = 2_000


def _index_sizes(partition: str) -> dict[str, tuple[int, int]]:
    """index name -> (bytes, relfilenode): a rebuilt index has a new file."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, pg_relation_size(i.oid), i.relfilenode
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = to_regclass(quote_ident(%s))
            """,
            [partition],
        )
        return {name: (size, node) for name, size, node in cursor.fetchall()}


def _day_partitions() -> dict[str, object]:
    return {p.name: p for table in TABLES for p in partition_list(table) if p.is_day}


def _marks_cleared() -> None:
    """Day partitions that outlive a test (made by earlier tests of the same database) keep
    no compaction mark from it: each test starts with none compacted."""
    with connection.cursor() as cursor:
        for name in _day_partitions():
            cursor.execute(f'COMMENT ON TABLE "{name}" IS NULL')


@pytest.fixture
def seeded_log():
    before = {p.name for table in PARTITIONED_TABLES for p in partition_list(table)}
    _marks_cleared()
    seed_logs(notifications=NOTIFICATIONS, days=3, environments=2, end=timezone.now())
    yield
    _drop_days_not_in(before)
    _marks_cleared()


@pytest.mark.django_db(transaction=True)
def test_finished_days_shrink_once_and_today_is_untouched(seeded_log, settings):
    settings.LOG_RETENTION_DAYS = 7
    settings.LOG_INDEX_COMPACT_AFTER_DAYS = 1
    now = timezone.now()
    partitions = _day_partitions()
    old = [p.name for p in partitions.values() if p.end <= now - timedelta(days=1)]
    recent = [p.name for p in partitions.values() if p.end > now - timedelta(days=1)]
    assert old and recent
    before = {name: _index_sizes(name) for name in partitions}

    compacted = index_compact_task.apply().get()

    assert sorted(compacted) == sorted(old)
    after = {name: _index_sizes(name) for name in partitions}
    old_before = sum(size for name in old for size, _ in before[name].values())
    old_after = sum(size for name in old for size, _ in after[name].values())
    assert old_after < old_before * 0.9, (old_before, old_after)
    for name in old:
        assert set(after[name]) == set(before[name])  # same indexes, no leftover
        assert all(after[name][i][1] != before[name][i][1] for i in before[name])
    for name in recent:
        assert after[name] == before[name]  # not rebuilt: same files, same sizes

    # Marked once: the next night does nothing.
    assert index_compact_task.apply().get() == []
    assert {name: _index_sizes(name) for name in partitions} == after
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE obj_description(oid, 'pg_class') = %s",
            [COMPACTED_COMMENT],
        )
        assert cursor.fetchone()[0] == len(old)


@pytest.mark.django_db(transaction=True)
def test_a_day_the_next_purge_drops_is_skipped(seeded_log):
    now = timezone.now()
    ends = {p.name: p.end for p in _day_partitions().values()}
    # Retention of 3 days: tomorrow night's purge drops the days that ended 2 days ago.
    doomed = [name for name, end in ends.items() if end <= now - timedelta(days=2)]
    kept = [
        name
        for name, end in ends.items()
        if now - timedelta(days=2) < end <= now - timedelta(days=1)
    ]
    assert doomed and kept
    before = {name: _index_sizes(name) for name in doomed}

    result = index_compact(now=now, after_days=1, retention_days=3)

    assert sorted(result.compacted) == sorted(kept)
    assert {name: _index_sizes(name) for name in doomed} == before


@pytest.mark.django_db(transaction=True)
def test_writers_on_the_day_being_rebuilt_never_wait(seeded_log):
    now = timezone.now()
    # The newest finished day: the seed's (older, empty days of earlier tests may be there).
    old = sorted(
        (
            p
            for p in partition_list("logs_notification")
            if p.is_day and p.end <= now - timedelta(days=1)
        ),
        key=lambda p: p.start,
        reverse=True,
    )
    notifications = list(
        Notification.objects.filter(created_at__gte=old[0].start, created_at__lt=old[0].end)[:20]
    )
    assert notifications
    with Writers(notifications, lock_timeout_ms=WRITER_LOCK_TIMEOUT_MS) as writers:
        while len(writers.calls) < 5 and not writers.errors:
            threading.Event().wait(0.05)
        started = time.monotonic()
        result = index_compact(now=now, after_days=1, retention_days=7)
        ended = time.monotonic()
    assert not writers.errors, writers.errors
    assert result.compacted and not result.busy
    # The writers went on while the indexes were rebuilt.
    assert sum(started <= start and end <= ended for start, end in writers.calls) > 5
    slowest = max(end - start for start, end in writers.calls)
    assert slowest < WRITER_LOCK_TIMEOUT_MS / 1000


@pytest.mark.django_db(transaction=True)
def test_a_failed_rebuilds_leftover_is_dropped(seeded_log):
    now = timezone.now()
    # The newest finished day: the seed's (older, empty days of earlier tests may be there).
    old = max(
        (p for p in partition_list("logs_event") if p.is_day and p.end <= now - timedelta(days=1)),
        key=lambda p: p.start,
    )
    leftover = f"{old.name}_kind_ccnew"
    # A concurrent build that fails leaves its index behind, invalid, as REINDEX's does.
    with (
        pytest.raises(Exception, match="could not create unique index"),
        connection.cursor() as cursor,
    ):
        cursor.execute(f'CREATE UNIQUE INDEX CONCURRENTLY "{leftover}" ON "{old.name}" (kind)')
    assert leftover in _index_sizes(old.name)

    result = index_compact(now=now, after_days=1, retention_days=7)

    assert leftover in result.leftovers_dropped
    assert leftover not in _index_sizes(old.name)
    assert old.name in result.compacted


def test_beat_compacts_nightly_after_the_purge(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["logs-index-compact"]
    purge = settings.CELERY_BEAT_SCHEDULE["logs-retention-purge"]["schedule"]
    assert entry["task"] == "logs.tasks.index_compact_task"
    assert entry["schedule"].hour == {4} and purge.hour == {3}


@pytest.mark.django_db(transaction=True)
def test_it_gives_way_to_a_partition_manager_and_retries_the_next_night(seeded_log, monkeypatch):
    monkeypatch.setattr(index_compaction, "LOCK_TIMEOUT_MS", 200)
    now = timezone.now()
    held, release = threading.Event(), threading.Event()

    def partition_manager() -> None:
        # A purge or ensure_partitions holding the managers' lock (logs/partitions.py).
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
                held.set()
                release.wait(30)
        finally:
            connection.close()

    manager = threading.Thread(target=partition_manager)
    manager.start()
    try:
        assert held.wait(10)
        busy = index_compact(now=now, after_days=1, retention_days=7)
    finally:
        release.set()
        manager.join(30)
    assert busy.busy and not busy.compacted
    assert not busy.leftovers_dropped

    again = index_compact(now=now, after_days=1, retention_days=7)
    assert sorted(again.compacted) == sorted(busy.busy)
