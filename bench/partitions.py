"""Partition changes: creating a day, and dropping a day of logs next to deleting it.

`partition.create` times logs.partitions.partition_create for an empty future day (what beat
does every day, for the three log tables together). `retention.drop_day` times
logs.partitions.partition_drop of one day's notifications, deliveries and events; its
baseline `retention.delete_day` deletes the same amount of data (a day seeded alike) the way
a purge without partitions would: batched DELETEs by primary key, each batch its own
transaction. Days are seeded by demo.loader (a day's share of the selectors' million at full
size) before the seven days the selectors use, and every day partition made here is dropped
when the scenario ends.
"""

import time
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.utils import timezone

from bench.harness import BenchmarkError, Measurement, Run, Scenario, register, time_calls
from demo.loader import seed_logs
from logs.partitions import PARTITIONED_TABLES, partition_create, partition_drop, partition_list

# 1,000,000 notifications over 7 days, as the selectors seed them: one day's worth.
DAY_SMOKE = {"notifications": 300, "repeat": 2, "batch": 100}
DAY_FULL = {"notifications": 143_000, "repeat": 2, "batch": 10_000}
# The days bench/selectors.py seeds (its FULL["days"]): never touched here.
SELECTOR_DAYS = 7


def _today() -> date:
    return timezone.now().astimezone(UTC).date()


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return start, start + timedelta(days=1)


# How often the clean-up tries each step of a day's drop while a lock stays busy (with
# partition_drop's backoff, at most 2 s apart: about five minutes). After retention.delete_day
# has deleted a day row by row, autovacuum works through it (minutes at 10,000,000): it gives
# way to a lock request only after deadlock_timeout (1 s), longer than one attempt waits, so
# the drop is tried until autovacuum is done. The nightly purge leaves such a day to the next
# night; a benchmark cleans up now.
_CLEAN_UP_ATTEMPTS = 120


def _drop_days(days: set[date]) -> None:
    for table in PARTITIONED_TABLES:
        for partition in partition_list(table):
            if partition.is_day and partition.start.date() in days:
                partition_drop(partition, attempts=_CLEAN_UP_ATTEMPTS)


def _drop_days_before(first_kept: date) -> None:
    # Seeding a day creates every day from it to today: those older than the selectors'
    # seven go again (empty partitions would still be planned for by unpruned queries).
    _drop_days(
        {
            p.start.date()
            for p in partition_list("logs_notification")
            if p.is_day and p.start.date() < first_kept
        }
    )


def _rows_of_day(day: date) -> int:
    start, end = _bounds(day)
    total = 0
    with connection.cursor() as cursor:
        for table, column in PARTITIONED_TABLES.items():
            cursor.execute(
                f"SELECT count(*) FROM {table} WHERE {column} >= %s AND {column} < %s",  # noqa: S608 (our names)
                [start, end],
            )
            total += cursor.fetchone()[0]
    return total


@register
class PartitionCreate(Scenario):
    name = "partition.create"
    description = "create an empty future day of the three log tables (LIKE, ATTACH)"
    smoke_size = {"repeat": 3}
    full_size = {"repeat": 20}

    def measure(self, run: Run):
        days = [_today() + timedelta(days=200 + n) for n in range(self.size["repeat"] + 1)]
        run.defer(_drop_days, set(days))
        pending = iter(days)

        def create():
            day = next(pending)
            created = partition_create(day=day)
            if len(created) != len(PARTITIONED_TABLES):
                raise BenchmarkError(f"creating {day} made {created}, not one per table")

        return time_calls(
            create, repeat=self.size["repeat"], unit="ms/day", note="3 tables, empty day"
        )


class _DayPurge(Scenario):
    smoke_size = DAY_SMOKE
    full_size = DAY_FULL
    first_offset = 0

    def setup(self, run: Run) -> None:
        # Days before the selectors' seven, a different set for each scenario.
        self.days = [
            _today() - timedelta(days=self.first_offset + n) for n in range(self.size["repeat"])
        ]
        run.defer(_drop_days_before, _today() - timedelta(days=SELECTOR_DAYS))
        self.rows = {}
        for n, day in enumerate(self.days):
            seed_logs(
                notifications=self.size["notifications"], days=1, environments=1,
                seed=self.first_offset + n,
                end=_bounds(day)[0] + timedelta(hours=23, minutes=59),
            )  # fmt: skip
            self.rows[day] = _rows_of_day(day)
            if self.rows[day] < self.size["notifications"]:
                raise BenchmarkError(f"seeding {day} wrote {self.rows[day]} rows")

    def purge(self, day: date) -> None:
        raise NotImplementedError

    def measure(self, run: Run):
        samples = []
        for day in self.days:
            started = time.perf_counter()
            self.purge(day)
            samples.append((time.perf_counter() - started) * 1000)
            if _rows_of_day(day):
                raise BenchmarkError(f"{self.name}: rows of {day} are still there")
        rows = sum(self.rows.values()) // len(self.rows)
        return Measurement.from_samples(
            samples, "ms/day", note=f"{rows:,} rows a day (3 tables)", rows_per_day=rows
        )


@register
class DeleteDay(_DayPurge):
    name = "retention.delete_day"
    description = "delete one day of logs with batched DELETEs (no partitions to drop)"
    first_offset = 20

    def purge(self, day: date) -> None:
        start, end = _bounds(day)
        with connection.cursor() as cursor:
            for table, column in reversed(PARTITIONED_TABLES.items()):
                while True:
                    cursor.execute(
                        f"DELETE FROM {table} WHERE (id, {column}) IN (SELECT id, {column} "  # noqa: S608 (our names)
                        f"FROM {table} WHERE {column} >= %s AND {column} < %s LIMIT %s)",
                        [start, end, self.size["batch"]],
                    )
                    if cursor.rowcount == 0:
                        break


@register
class DropDay(_DayPurge):
    name = "retention.drop_day"
    baseline = "retention.delete_day"
    description = "drop one day of logs: detach and drop its three partitions"
    first_offset = 30

    def purge(self, day: date) -> None:
        dropped = 0
        for table in reversed(PARTITIONED_TABLES):
            for partition in partition_list(table):
                if partition.is_day and partition.start.date() == day:
                    partition_drop(partition)
                    dropped += 1
        if dropped != len(PARTITIONED_TABLES):
            raise BenchmarkError(f"{day}: {dropped} partitions dropped, not one per table")


def _index_bytes_of_day(day: date) -> int:
    """Bytes of the indexes of the day's partitions of the three log tables."""
    suffix = f"_p{day:%Y%m%d}"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_indexes_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relname = ANY(%s)",
            [[f"{table}{suffix}" for table in PARTITIONED_TABLES if table.startswith("logs_")]],
        )
        return int(cursor.fetchone()[0])


@register
class ClearContentDay(_DayPurge):
    """logs.content_retention on one day: what the nightly content retention costs next to
    deleting the day. The note gives the day's index bytes after the clearing (and a VACUUM)
    as a share of before: the notification's request is indexed (GIN), so its update is not
    HOT and each index of the notifications gains an entry per row."""

    name = "retention.clear_content_day"
    baseline = "retention.delete_day"
    description = "clear one day's content (content retention): batched UPDATEs, rows kept"
    first_offset = 40
    # One day at smoke size: the smoke run of every row shares SMOKE_BUDGET_SECONDS.
    smoke_size = {**DAY_SMOKE, "repeat": 1}

    def measure(self, run: Run):
        from accounts.models import Environment
        from logs.content_retention import CONTENT_BATCH, environment_content_clear

        samples, growth, cleared = [], [], 0
        for day in self.days:
            start, end = _bounds(day)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT DISTINCT environment_id FROM logs_notification "
                    "WHERE created_at >= %s AND created_at < %s",
                    [start, end],
                )
                environment_ids = [row[0] for row in cursor.fetchall()]
            before = _index_bytes_of_day(day)
            # The day is past a one-day retention seen from the end of the next day; the
            # watermark starts just before it, so no other day is read.
            now = end + timedelta(days=1)
            started = time.perf_counter()
            for environment in Environment.all_objects.filter(pk__in=environment_ids):
                environment.content_retention_days = 1
                environment.content_cleared_through = start - timedelta(microseconds=1)
                environment.content_cleared_through_id = None
                cleared += environment_content_clear(
                    environment=environment, now=now, batch_size=CONTENT_BATCH
                ).cleared
            samples.append((time.perf_counter() - started) * 1000)
            with connection.cursor() as cursor:
                for table in PARTITIONED_TABLES:
                    if table.startswith("logs_"):
                        cursor.execute(f"VACUUM {table}{day:_p%Y%m%d}")
            growth.append(_index_bytes_of_day(day) / before)
        rows = sum(self.rows.values()) // len(self.rows)
        return Measurement.from_samples(
            samples,
            "ms/day",
            note=f"{cleared // len(self.days):,} notifications a day cleared; indexes after: "
            f"{max(growth):.2f}x",
            rows_per_day=rows,
            index_growth=round(max(growth), 3),
        )
