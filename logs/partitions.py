"""Daily range partitions of the log tables: create them ahead, list and drop them for the
retention purge.

Every partitioned table has a DEFAULT partition (created by the migrations), so an insert
never fails for want of a day partition. When a day partition is created for a day that
already has rows in DEFAULT (seeded history, a clock far off, beat down for days), those rows
are moved into the new partition in the same transaction, so every row stays findable and
DEFAULT stays small.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.utils import timezone

# Table -> its partition column (the notification's created_at).
PARTITIONED_TABLES: dict[str, str] = {
    "logs_notification": "created_at",
    "logs_delivery": "notification_created_at",
    "logs_event": "notification_created_at",
    "webhooks_inbox": "received_at",  # provider callbacks, by the day they arrived
}
# Serialises partition changes between processes (migrate, beat, seed_logs).
_ADVISORY_LOCK_KEY = 0x6C6F6773  # "logs"
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    # [start, end) in UTC; both None for the DEFAULT partition.
    start: datetime | None
    end: datetime | None

    @property
    def is_default(self) -> bool:
        return self.start is None


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def partition_list(table: str) -> list[Partition]:
    """The table's partitions, day partitions oldest first, DEFAULT last."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass
            """,
            [table],
        )
        rows = cursor.fetchall()
    partitions = []
    for name, bound in rows:
        match = _BOUND.search(bound)
        if match:
            start, end = (datetime.fromisoformat(value) for value in match.groups())
            partitions.append(Partition(table, name, start.astimezone(UTC), end.astimezone(UTC)))
        else:
            partitions.append(Partition(table, name, None, None))
    return sorted(
        partitions, key=lambda p: (p.is_default, p.start or datetime.min.replace(tzinfo=UTC))
    )


def _exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def _create_day_partition(table: str, column: str, day: date) -> bool:
    """Create one day partition of `table`, in its own transaction. Returns False when it
    already exists."""
    name = partition_name(table, day)
    start, end = _day_bounds(day)
    default = f"{table}_default"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        if _exists(name):
            return False
        # Writers go through the parent: this lock holds them (reads go on) until the day is
        # attached, so no row can land in DEFAULT between the check or the move below and
        # the attach, which PostgreSQL would refuse. It is held for milliseconds, except
        # when a day's rows have to be moved out of DEFAULT.
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {column} >= %s AND {column} < %s)",  # noqa: S608 (names are ours)
            [start, end],
        )
        if not cursor.fetchone()[0]:
            cursor.execute(
                f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
            return True
        # PostgreSQL refuses a new partition whose range has rows in DEFAULT: build the day
        # as a plain table, move the rows over, then attach it (which adds the indexes and
        # foreign keys of the parent).
        cursor.execute(
            f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE {column} >= %s AND {column} < %s "  # noqa: S608
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            [start, end],
        )
        cursor.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
    return True


def _days_in_default(table: str, column: str) -> set[date]:
    """Days that have rows in DEFAULT (normally none: beat was down, or a clock was off)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT ({column} AT TIME ZONE 'UTC')::date FROM {table}_default"  # noqa: S608
        )
        return {row[0] for row in cursor.fetchall()}


def partitions_ensure(*, days_ahead: int, start: date | None = None) -> list[str]:
    """Create the day partitions of every log table from `start` (default: today, UTC)
    through today + `days_ahead`, and for every day that has rows waiting in DEFAULT (which
    are moved into it). Idempotent; each day is its own short transaction, so one busy day
    never holds back the others. Returns the names created."""
    today = timezone.now().astimezone(UTC).date()
    first = min(start or today, today)
    ahead = {first + timedelta(days=n) for n in range((today - first).days + days_ahead + 1)}
    created = []
    for table, column in PARTITIONED_TABLES.items():
        # Future days first: they are empty and cheap, and keep new traffic out of DEFAULT.
        for day in sorted(ahead | _days_in_default(table, column), reverse=True):
            if _create_day_partition(table, column, day):
                created.append(partition_name(table, day))
    return created


def partitions_before(table: str, cutoff: datetime) -> list[Partition]:
    """Day partitions of `table` that end at or before `cutoff`: whole days past retention."""
    return [p for p in partition_list(table) if not p.is_default and p.end <= cutoff]


def partition_drop(partition: Partition) -> None:
    """Detach and drop one day partition: the whole day goes at once, never row by row."""
    if partition.is_default:
        raise ValueError("The DEFAULT partition is never dropped.")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        if not _exists(partition.name):
            return
        # Foreign-key checks are deferred to commit; PostgreSQL cannot drop a table with
        # checks pending (rows written earlier in an enclosing transaction), so run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {partition.table} DETACH PARTITION {partition.name}")
        cursor.execute(f"DROP TABLE {partition.name}")
