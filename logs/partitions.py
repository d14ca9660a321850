"""Daily range partitions of the log tables: create them ahead, list them, and detach and drop
them for the retention purge, without ever stalling the writers.

Every partitioned table has a DEFAULT partition (created by the migrations), so an insert
never fails for want of a day partition. A day is created in one short transaction for the
three tables together:

1. each day table is built as a plain table `LIKE` its parent (columns, defaults, CHECK and
   NOT NULL constraints, indexes: whatever the parent has today), with a CHECK constraint
   matching the partition bound so that ATTACH can skip scanning it;
2. the locks are taken, every wait bounded by one budget of LOG_PARTITION_LOCK_TIMEOUT_MS
   (`lock_timeout`): the tables the foreign keys reference (SHARE ROW EXCLUSIVE, as ATTACH
   clones the keys), the parents, then each DEFAULT partition (ACCESS EXCLUSIVE, which
   ATTACH takes anyway, so that nothing lands in DEFAULT between the move and the attach);
3. rows of that day waiting in DEFAULT are moved into the day tables, which are attached
   (ATTACH still scans DEFAULT to prove it holds none of the day: DEFAULT must stay small,
   which is what creating days ahead and moving stranded rows is for).

How hard the parents are locked depends on the day. A day that is still in the future and has
nothing in DEFAULT gets SHARE UPDATE EXCLUSIVE, which no reader or writer conflicts with.
A day that has begun or has rows in DEFAULT gets EXCLUSIVE (reads go on, writes wait for the
milliseconds of the move): without it a statement planned before the ATTACH commits and
waiting on DEFAULT would, once it runs, miss the moved rows (`SELECT … FOR UPDATE` finds
nothing) or fail its insert into DEFAULT with a partition-constraint error (seen on
PostgreSQL 15). Parents are locked in the order writers touch them (notification first).

A lock that is not free within the budget aborts the attempt, which is retried a few times
with backoff and then left for the next run (beat runs hourly); PostgreSQL's deadlock
detector never has to act, because the budget is shorter than `deadlock_timeout` (1 s), so
the partition manager always gives way to the writer. Every change also takes an advisory
lock, so partition managers (migrate, beat, seed_logs, the purge) run one at a time.

Only tables named `<table>_pYYYYMMDD` whose bound is exactly that UTC day are ever managed;
DEFAULT and anything else attached by hand are left alone.
"""

import logging
import random
import re
import time as clock
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg.errors
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg import sql

logger = logging.getLogger(__name__)

# Table -> its partition column (the notification's created_at). Order matters: the order
# in which writers (event_record) touch them, so the partition manager locks them alike.
PARTITIONED_TABLES: dict[str, str] = {
    "logs_notification": "created_at",
    "logs_delivery": "notification_created_at",
    "logs_event": "notification_created_at",
    "webhooks_inbox": "received_at",  # provider callbacks, by the day they arrived
}
# Serialises partition changes between processes (migrate, beat, seed_logs).
_ADVISORY_LOCK_KEY = 0x6C6F6773  # "logs"
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
_DAY_NAME = re.compile(r"^(?P<table>.+)_p(?P<day>\d{8})$")
# Bounded retry: attempts per change and the first pause (doubled each time, with jitter).
_ATTEMPTS = 4
_BACKOFF_SECONDS = 0.1
_BACKOFF_MAX_SECONDS = 2.0
# The fillfactor of the day partitions whose rows event_record updates (a notification's
# status, a delivery's state and details; events and the inbox are written once and stay
# packed full). The tenth of each page left free by inserts is where an update's new row
# version goes: one that changes no indexed column is then heap-only (HOT) and writes no index
# entry at all, and any other still dirties one page instead of two. PostgreSQL takes storage
# parameters per partition only (a partitioned parent refuses them), so each day table gets it
# when it is built; migration 0010_log_partitions_fillfactor gave it to those that existed.
LOG_FILLFACTOR = 90
FILLFACTORS: dict[str, int] = {"logs_notification": LOG_FILLFACTOR, "logs_delivery": LOG_FILLFACTOR}
# The log's big, rarely read columns: a notification's request and merge tags, a delivery's
# content, an event's payload. Read when one notification is opened, never by a search. They
# are compressed with lz4 where the server is built with it, else pglz, PostgreSQL's default
# (migration 0013_log_content_compression chose, and set it on the parents' columns, which
# `LIKE … INCLUDING ALL` copies to every day table, and on the partitions that existed). It
# applies to values written from then on: existing values keep theirs, nothing is rewritten.
COMPRESSED_COLUMNS: dict[str, tuple[str, ...]] = {
    "logs_notification": ("request", "merge_tags"),
    "logs_delivery": ("subject", "html", "text"),
    "logs_event": ("payload",),
}
# Once a row is toasted, PostgreSQL compresses, then moves out of line, its largest values
# until the row fits in toast_tuple_target (default 2032 bytes). At 512 a toasted row keeps at
# most that in the heap page, its searched columns, and its content in TOAST: a toasted
# delivery's heap row measured 437 bytes instead of 940 (email HTML of 2.3 kB, compressible;
# 256 made it 256 bytes but the row 23% bigger in all, TOAST's own per-chunk overhead; 512
# cost 7%, 1024 changed nothing). WORKAROUND: PostgreSQL (15 to 18) starts toasting only when
# a row exceeds 2032 bytes whatever this says (heap_prepare_insert tests
# TOAST_TUPLE_THRESHOLD), so a row under 2 kB stays inline and uncompressed.
LOG_TOAST_TUPLE_TARGET = 512
TOAST_TUPLE_TARGETS: dict[str, int] = dict.fromkeys(COMPRESSED_COLUMNS, LOG_TOAST_TUPLE_TARGET)


def storage_parameters(table: str) -> dict[str, int]:
    """The storage parameters a day partition of `table` is built with (a partitioned parent
    takes none, and LIKE copies none)."""
    parameters = {}
    if table in FILLFACTORS:
        parameters["fillfactor"] = FILLFACTORS[table]
    if table in TOAST_TUPLE_TARGETS:
        parameters["toast_tuple_target"] = TOAST_TUPLE_TARGETS[table]
    return parameters


# A day that starts within this margin may already be receiving writes (clocks differ).
_SOON = timedelta(hours=1)
# Marks a day table the purge detached but could not drop yet, so a later purge drops it
# (and never a table of the same shape someone else left there).
_DETACHED_COMMENT = "detached by logs.partitions; dropped by the next retention purge"
# Errors after which an attempt is retried: a lock not free within the budget; a deadlock
# (only if deadlock_timeout was set below the budget); rows that reached DEFAULT for a
# future day while it was being attached (the next attempt moves them).
_RETRYABLE = (
    psycopg.errors.LockNotAvailable,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.CheckViolation,
)


class PartitionBusy(Exception):
    """A partition change gave way to the database's other users: a lock it needed was not
    free within LOG_PARTITION_LOCK_TIMEOUT_MS on any attempt. Nothing was changed."""


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

    @property
    def is_day(self) -> bool:
        """One of ours: named `<table>_pYYYYMMDD` and bounded by exactly that UTC day."""
        if self.start is None:
            return False
        day = self.start.date()
        return (self.start, self.end) == _day_bounds(day) and self.name == partition_name(
            self.table, day
        )


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _sql(template: str, **parts: sql.Composable) -> str:
    """A statement with every identifier and literal quoted by psycopg."""
    return sql.SQL(template).format(**parts).as_string(None)


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


# --- reading the catalogue -------------------------------------------------------------------


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
        elif bound == "DEFAULT":
            partitions.append(Partition(table, name, None, None))
        # Anything else (MINVALUE/MAXVALUE bounds) was attached by hand: not ours to list.
    return sorted(
        partitions, key=lambda p: (p.is_default, p.start or datetime.min.replace(tzinfo=UTC))
    )


def _relation_state(cursor, name: str) -> str:
    """'absent', 'partition' (attached), or 'table' (a plain table of that name)."""
    cursor.execute(
        "SELECT relispartition FROM pg_class WHERE oid = to_regclass(%s)", [_quote(name)]
    )
    row = cursor.fetchone()
    if row is None:
        return "absent"
    return "partition" if row[0] else "table"


def _quote(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def _referenced_tables(cursor, tables: list[str]) -> list[str]:
    """Tables the parents' foreign keys point at: ATTACH and DETACH lock them."""
    cursor.execute(
        """
        SELECT DISTINCT c.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.confrelid
        WHERE k.contype = 'f' AND k.conrelid = ANY(%s::regclass[])
        ORDER BY 1
        """,
        [[_quote(table) for table in tables]],
    )
    return [row[0] for row in cursor.fetchall()]


def _days_in_default(table: str, column: str) -> set[date]:
    """Days that have rows in DEFAULT (normally none: beat was down, or a clock was off)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _sql(
                "SELECT DISTINCT ({column} AT TIME ZONE 'UTC')::date FROM {default}",
                column=_ident(column),
                default=_ident(f"{table}_default"),
            )
        )
        return {row[0] for row in cursor.fetchall()}


# --- bounded lock waits ----------------------------------------------------------------------


class _LockBudget:
    """One lock_timeout shared by every lock wait of a transaction: PostgreSQL applies
    lock_timeout to each wait separately, so a change taking six locks could otherwise make
    a writer queued behind it wait six times as long. The clock starts at the first lock
    that others can queue behind (building the new tables locks nothing of theirs)."""

    def __init__(self, cursor, milliseconds: int) -> None:
        self.cursor = cursor
        self.milliseconds = milliseconds
        self.deadline: float | None = None

    def _left_ms(self) -> int:
        if self.deadline is None:
            self.deadline = clock.monotonic() + self.milliseconds / 1000
        return int((self.deadline - clock.monotonic()) * 1000)

    def lock(self, tables: list[str], mode: str) -> None:
        """LOCK TABLE ONLY (a parent's partitions are not locked with it), within the budget."""
        if not tables:
            return
        left = self._left_ms()
        if left < 1:
            raise PartitionBusy(f"the {self.milliseconds} ms lock budget ran out")
        self._set_timeout(left)
        only = sql.SQL(", ").join(sql.SQL("ONLY {}").format(_ident(t)) for t in tables)
        self.cursor.execute(_sql("LOCK TABLE {tables} IN " + mode + " MODE", tables=only))

    def arm(self) -> None:
        """Before DDL that may take a lock not taken above: wait at most what is left."""
        self._set_timeout(max(self._left_ms(), 1))

    def _set_timeout(self, milliseconds: int) -> None:
        self.cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{milliseconds}ms"])


@contextmanager
def _ddl_transaction() -> Iterator[_LockBudget]:
    """A transaction (a savepoint inside an outer one) holding the partition managers'
    advisory lock, with every lock wait bounded by the budget. Restores the session's own
    lock_timeout and statement_timeout after, for callers inside an outer transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
        )
        lock_timeout, statement_timeout = cursor.fetchone()
        # Managers wait for each other without a bound: none of them holds a lock a writer
        # needs while it waits here.
        cursor.execute("SELECT set_config('lock_timeout', '0', true)")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        # Moving stranded rows may take longer than a web request's statement_timeout.
        cursor.execute("SELECT set_config('statement_timeout', '0', true)")
        yield _LockBudget(cursor, settings.LOG_PARTITION_LOCK_TIMEOUT_MS)
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true), "
            "set_config('statement_timeout', %s, true)",
            [lock_timeout, statement_timeout],
        )


def _retrying[T](what: str, change: Callable[[], T], *, attempts: int = _ATTEMPTS) -> T:
    """Run `change` (one _ddl_transaction), retrying a busy attempt a few times with backoff.
    Raises PartitionBusy when every attempt gave way."""
    pause = _BACKOFF_SECONDS
    for attempt in range(1, attempts + 1):
        try:
            return change()
        except PartitionBusy:
            pass
        except DatabaseError as exc:
            if not isinstance(exc.__cause__, _RETRYABLE):
                raise
        if attempt < attempts:
            clock.sleep(pause * (1 + random.random()))  # noqa: S311 (jitter, not a secret)
            pause = min(pause * 2, _BACKOFF_MAX_SECONDS)
    raise PartitionBusy(
        f"{what}: a lock was not free within {settings.LOG_PARTITION_LOCK_TIMEOUT_MS} ms "
        f"on {attempts} attempts"
    )


def catalog_change[T](what: str, change: Callable[[_LockBudget], T], *, attempts: int) -> T:
    """Run `change(budget)` in one short transaction of the partition managers (their advisory
    lock held, every lock wait within one LOG_PARTITION_LOCK_TIMEOUT_MS budget), retried with
    backoff while a lock is busy. For other catalog changes on the log that writers would
    queue behind (logs.migration_operations). Raises PartitionBusy when every attempt gave
    way; nothing was changed then."""

    def once() -> T:
        with _ddl_transaction() as budget:
            return change(budget)

    return _retrying(what, once, attempts=attempts)


# --- creating a day --------------------------------------------------------------------------


def _day_is_live(day: date) -> bool:
    """Whether writes to this day may be in flight: it has begun, or begins very soon."""
    return _day_bounds(day)[0] <= timezone.now() + _SOON


def _in_day(column: str, day: date) -> sql.Composed:
    """`column` within the day: the partition bound, as a condition."""
    start, end = _day_bounds(day)
    return sql.SQL("{column} >= {start} AND {column} < {end}").format(
        column=_ident(column), start=sql.Literal(start), end=sql.Literal(end)
    )


def _default_has_day(cursor, table: str, column: str, day: date) -> bool:
    cursor.execute(
        _sql(
            "SELECT EXISTS (SELECT 1 FROM {default} WHERE {in_day})",
            default=_ident(f"{table}_default"),
            in_day=_in_day(column, day),
        )
    )
    return cursor.fetchone()[0]


def _day_table_build(cursor, table: str, column: str, day: date) -> None:
    """The day as a plain table shaped like the parent, with its bound as a CHECK."""
    name = partition_name(table, day)
    # LIKE copies no storage parameters (the parent can have none): storage_parameters says
    # them. It copies the columns' compression (INCLUDING ALL has INCLUDING COMPRESSION).
    parameters = storage_parameters(table)
    storage = (
        sql.SQL(" WITH ({})").format(
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.SQL(name), sql.Literal(value))
                for name, value in parameters.items()
            )
        )
        if parameters
        else sql.SQL("")
    )
    cursor.execute(
        _sql(
            "CREATE TABLE {name} (LIKE {parent} INCLUDING ALL){storage}",
            name=_ident(name),
            parent=_ident(table),
            storage=storage,
        )
    )
    # PostgreSQL skips ATTACH's validation scan when a valid CHECK implies the bound.
    cursor.execute(
        _sql(
            "ALTER TABLE {name} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL AND {in_day})",
            name=_ident(name),
            check=_ident(f"{name}_bound"),
            column=_ident(column),
            in_day=_in_day(column, day),
        )
    )


def _columns(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [_quote(table)],
    )
    return [row[0] for row in cursor.fetchall()]


def _day_rows_move(cursor, table: str, column: str, day: date) -> None:
    """Move the day's rows from DEFAULT (locked by the caller) into the day table."""
    columns = sql.SQL(", ").join(_ident(c) for c in _columns(cursor, table))
    cursor.execute(
        _sql(
            "WITH moved AS (DELETE FROM {default} WHERE {in_day} RETURNING {columns}) "
            "INSERT INTO {name} ({columns}) SELECT {columns} FROM moved",
            default=_ident(f"{table}_default"),
            in_day=_in_day(column, day),
            columns=columns,
            name=_ident(partition_name(table, day)),
        )
    )


def _day_table_attach(cursor, table: str, day: date) -> None:
    name = partition_name(table, day)
    start, end = _day_bounds(day)
    cursor.execute(
        _sql(
            "ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})",
            parent=_ident(table),
            name=_ident(name),
            start=sql.Literal(start),
            end=sql.Literal(end),
        )
    )
    # The bound is now the partition constraint: the copy would only cost every insert.
    # Nobody else can see the table before this transaction commits, so this waits on none.
    cursor.execute(
        _sql(
            "ALTER TABLE {name} DROP CONSTRAINT {check}",
            name=_ident(name),
            check=_ident(f"{name}_bound"),
        )
    )


def _day_create_once(day: date) -> list[str]:
    """One attempt at creating `day` for every table that lacks it; the names created."""
    with _ddl_transaction() as budget:
        cursor = budget.cursor
        tables = {}
        for table, column in PARTITIONED_TABLES.items():
            state = _relation_state(cursor, partition_name(table, day))
            if state == "table":
                raise PartitionBusy(
                    f"{partition_name(table, day)} exists but is not attached (left by an "
                    "interrupted purge, which drops it)"
                )
            if state == "absent":
                tables[table] = column
        if not tables:
            return []
        for table, column in tables.items():
            _day_table_build(cursor, table, column, day)
        guarded = _day_is_live(day) or any(
            _default_has_day(cursor, table, column, day) for table, column in tables.items()
        )
        budget.lock(_referenced_tables(cursor, list(tables)), "SHARE ROW EXCLUSIVE")
        budget.lock(list(tables), "EXCLUSIVE" if guarded else "SHARE UPDATE EXCLUSIVE")
        budget.lock([f"{table}_default" for table in tables], "ACCESS EXCLUSIVE")
        budget.arm()
        for table, column in tables.items():
            if guarded:
                _day_rows_move(cursor, table, column, day)
            _day_table_attach(cursor, table, day)
        return [partition_name(table, day) for table in tables]


def partition_create(*, day: date) -> list[str]:
    """Create `day` for every log table that lacks it, moving its rows out of DEFAULT; the
    names created. Raises PartitionBusy when its locks stayed busy (nothing changed)."""
    return _retrying(f"creating {day}", lambda: _day_create_once(day))


def partitions_ensure(*, days_ahead: int, start: date | None = None) -> list[str]:
    """Create the day partitions of every log table from `start` (default: today, UTC)
    through today + `days_ahead`, and for every day that has rows waiting in DEFAULT (which
    are moved into it). Idempotent; each day is its own short transaction, so one busy day
    never holds back the others. A day whose locks stay busy is skipped with a warning and
    created by the next run. Returns the names created."""
    today = timezone.now().astimezone(UTC).date()
    first = min(start or today, today)
    days = {first + timedelta(days=n) for n in range((today - first).days + days_ahead + 1)}
    for table, column in PARTITIONED_TABLES.items():
        days |= _days_in_default(table, column)
    created = []
    # Future days first: they are empty and cheap, and keep new traffic out of DEFAULT.
    for day in sorted(days, reverse=True):
        try:
            created += partition_create(day=day)
        except PartitionBusy as exc:
            logger.warning("Log partitions for %s not created; the next run retries: %s", day, exc)
    return created


# --- dropping a day --------------------------------------------------------------------------


def partitions_before(table: str, cutoff: datetime) -> list[Partition]:
    """Day partitions of `table` that end at or before `cutoff`: whole days past retention.
    Only ours (`<table>_pYYYYMMDD`, one UTC day); never DEFAULT."""
    return [p for p in partition_list(table) if p.is_day and p.end <= cutoff]


def _detach_once(partition: Partition) -> bool:
    """Detach one day partition; False when it is not attached (any more)."""
    with _ddl_transaction() as budget:
        cursor = budget.cursor
        if _relation_state(cursor, partition.name) != "partition":
            return False
        # Foreign-key checks are deferred to commit; PostgreSQL cannot detach or drop a table
        # with checks pending (rows written earlier in an enclosing transaction): run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # WORKAROUND: DETACH … CONCURRENTLY would spare the parent its ACCESS EXCLUSIVE lock,
        # but PostgreSQL refuses it when the table has a DEFAULT partition (and inside a
        # transaction block). The plain DETACH holds the parent for milliseconds, under the
        # budget like everything else.
        budget.lock(_referenced_tables(cursor, [partition.table]), "SHARE ROW EXCLUSIVE")
        budget.lock([partition.table], "ACCESS EXCLUSIVE")
        budget.lock([f"{partition.table}_default"], "ACCESS EXCLUSIVE")
        budget.arm()
        cursor.execute(
            _sql(
                "ALTER TABLE {parent} DETACH PARTITION {name}",
                parent=_ident(partition.table),
                name=_ident(partition.name),
            )
        )
        cursor.execute(
            _sql("COMMENT ON TABLE {name} IS {comment}", name=_ident(partition.name),
                 comment=sql.Literal(_DETACHED_COMMENT))
        )  # fmt: skip
    return True


def _drop_detached_once(name: str) -> None:
    # A separate transaction from the detach: dropping the table's foreign keys takes ACCESS
    # EXCLUSIVE on the referenced tables (accounts_environment), held here for milliseconds
    # instead of for the whole detach.
    with _ddl_transaction() as budget:
        if _relation_state(budget.cursor, name) != "table":
            return
        budget.arm()
        budget.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        budget.cursor.execute(_sql("DROP TABLE {name}", name=_ident(name)))


def partition_drop(partition: Partition, *, attempts: int = _ATTEMPTS) -> None:
    """Detach and drop one day partition: the whole day goes at once, never row by row.
    Raises PartitionBusy when a lock stayed busy: nothing is lost, the next purge finishes
    it (a day detached but not yet dropped is dropped by partitions_detached_drop).
    `attempts`: how many times each step is tried, with backoff, while a lock stays busy."""
    if partition.is_default or not partition.is_day:
        raise ValueError(
            f"{partition.name} is not a day partition of {partition.table}; only "
            f"{partition.table}_pYYYYMMDD partitions are dropped, never DEFAULT."
        )
    _retrying(f"detaching {partition.name}", lambda: _detach_once(partition), attempts=attempts)
    _retrying(
        f"dropping {partition.name}",
        lambda: _drop_detached_once(partition.name),
        attempts=attempts,
    )


def partitions_detached_drop() -> list[str]:
    """Drop the day tables an earlier purge detached but could not drop (it marked them).
    Returns the names dropped; a table still busy is left for the next purge."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT c.relispartition
              AND obj_description(c.oid, 'pg_class') = %s
            """,
            [_DETACHED_COMMENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    dropped = []
    for name in names:
        match = _DAY_NAME.match(name)
        if not match or match["table"] not in PARTITIONED_TABLES:
            continue
        try:
            _retrying(f"dropping {name}", lambda name=name: _drop_detached_once(name))
        except PartitionBusy as exc:
            logger.warning(
                "Detached log table %s not dropped; the next purge retries: %s", name, exc
            )
            continue
        dropped.append(name)
    return dropped
