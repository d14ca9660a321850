"""Nightly compaction of the indexes of finished days: each index of a day partition of the log,
grown row by row while the day was written, is rebuilt in one go with `REINDEX INDEX
CONCURRENTLY` once the day is LOG_INDEX_COMPACT_AFTER_DAYS old. A B-tree filled by inserts in
key order other than insertion order keeps many half-empty pages; the same index built in one
go took 57-68% of the bytes (docs/indexes.md). Plans do not change: same definitions.

Online, and never in anyone's way:
- `REINDEX INDEX CONCURRENTLY` (one index at a time, in autocommit: PostgreSQL refuses it in a
  transaction block) takes SHARE UPDATE EXCLUSIVE on the partition, which no reader or writer
  conflicts with, so a write to the day goes on while its indexes are rebuilt;
- every lock wait is bounded by LOCK_TIMEOUT_MS: a reindex that cannot get its locks (a
  partition manager detaching the day, a long transaction it must wait out) fails, and the
  next night tries again. A failed concurrent reindex leaves an invalid copy of the index
  (`<name>_ccnew`, or `_ccold` if it failed while dropping the old one): the next run drops it
  (DROP INDEX CONCURRENTLY) before anything else on that partition;
- the partition managers (logs/partitions.py: creating, detaching, dropping days) never race
  it: on a direct connection each reindex holds their advisory lock (taken within the same
  bound), and DETACH's ACCESS EXCLUSIVE on the partition conflicts with the reindex's lock in
  any case (behind a pooler in transaction mode, where a session advisory lock would outlive
  our use of the server connection, that lock conflict alone keeps them apart);
- a day the next retention purge drops is skipped: rebuilding it would be wasted work.

A partition is compacted once: its table comment records it (COMMENT ON TABLE, SHARE UPDATE
EXCLUSIVE), and goes with the partition when retention drops it.
"""

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg.errors
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from psycopg import sql

from logs.partitions import _ADVISORY_LOCK_KEY, Partition, partition_list

logger = logging.getLogger(__name__)

# The tables whose day partitions are compacted (the inbox is small and short-lived).
TABLES = ("logs_notification", "logs_delivery", "logs_event")
COMPACTED_COMMENT = "indexes compacted by logs.index_compaction"
# The longest the reindex waits for any lock (the partition, its indexes, the transactions
# older than its snapshots, the partition managers' advisory lock) before it gives up until the
# next night. Nothing a writer needs queues behind a SHARE UPDATE EXCLUSIVE request, so this
# bounds how long the compaction waits, not how long a writer does; it only has to be short
# enough that a stuck wait never holds up the purge's retries.
LOCK_TIMEOUT_MS = 2_000
# A night's run starts no rebuild after this long (the task's hard limit is an hour): the
# partitions left are the next night's; the one interrupted is not marked, so it is redone.
COMPACT_RUN_SECONDS = 45 * 60
# What a failed REINDEX CONCURRENTLY leaves behind (PostgreSQL names them so; a second failure
# of the same index appends a digit).
_LEFTOVER = re.compile(r"_cc(new|old)\d*$")
# Errors after which this index is left for the next night.
_GIVE_WAY = (
    psycopg.errors.LockNotAvailable,
    psycopg.errors.QueryCanceled,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedObject,
)


@dataclass
class IndexCompaction:
    # Partitions whose every index was rebuilt and which are now marked.
    compacted: list[str] = field(default_factory=list)
    # Partitions with an index that could not be rebuilt tonight (a lock stayed busy).
    busy: list[str] = field(default_factory=list)
    # Invalid leftovers of earlier failed reindexes, dropped.
    leftovers_dropped: list[str] = field(default_factory=list)


def partitions_to_compact(
    *, now: datetime | None = None, after_days: int | None = None, retention_days: int | None = None
) -> list[Partition]:
    """Day partitions of the log that ended at least `after_days` ago, are not marked compacted,
    and are not dropped by the next night's retention purge. Oldest first."""
    now = now or timezone.now()
    after_days = settings.LOG_INDEX_COMPACT_AFTER_DAYS if after_days is None else after_days
    retention_days = settings.LOG_RETENTION_DAYS if retention_days is None else retention_days
    finished_by = now - timedelta(days=after_days)
    # The purge drops a day once it ended `retention_days` ago; tomorrow's run, these too.
    purged_by = now + timedelta(days=1) - timedelta(days=retention_days)
    marked = _marked()
    return [
        partition
        for table in TABLES
        for partition in partition_list(table)
        if partition.is_day
        and partition.end <= finished_by
        and partition.end > purged_by
        and partition.name not in marked
    ]


def index_compact(
    *,
    now: datetime | None = None,
    after_days: int | None = None,
    retention_days: int | None = None,
    until: float | None = None,
) -> IndexCompaction:
    """Rebuild the indexes of every finished day partition not compacted yet (see the module),
    starting none after `until` (time.monotonic(); default COMPACT_RUN_SECONDS from now: the
    partitions left over are reported busy). Must run in autocommit, outside any transaction.
    Safe to run twice: the second run finds every partition marked and does nothing."""
    if connection.in_atomic_block:
        raise RuntimeError(
            "index_compact runs REINDEX INDEX CONCURRENTLY, which PostgreSQL refuses inside a "
            "transaction block: call it outside transaction.atomic()."
        )
    result = IndexCompaction()
    partitions = partitions_to_compact(
        now=now, after_days=after_days, retention_days=retention_days
    )
    until = time.monotonic() + COMPACT_RUN_SECONDS if until is None else until
    with _bounded_waits():
        for partition in partitions:
            if time.monotonic() >= until:
                result.busy.append(partition.name)
                continue
            result.leftovers_dropped += _leftovers_drop(partition.name)
            if _partition_compact(partition.name, until=until):
                result.compacted.append(partition.name)
            else:
                result.busy.append(partition.name)
    return result


def _marked() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND c.relispartition
              AND obj_description(c.oid, 'pg_class') = %s
            """,
            [COMPACTED_COMMENT],
        )
        return {row[0] for row in cursor.fetchall()}


def _indexes(name: str, *, valid: bool) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = to_regclass(quote_ident(%s)) AND x.indisvalid = %s
            ORDER BY i.relname
            """,
            [name, valid],
        )
        return [row[0] for row in cursor.fetchall()]


def _leftovers_drop(name: str) -> list[str]:
    """Drop the invalid copies a failed REINDEX CONCURRENTLY left on this partition."""
    dropped = []
    for index in _indexes(name, valid=False):
        if not _LEFTOVER.search(index):
            continue  # an invalid index of someone else's (a failed migration): not ours
        if _run(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(index))):
            dropped.append(index)
    return dropped


def _partition_compact(name: str, *, until: float) -> bool:
    """Rebuild each valid index of one partition, then mark it; False when one gave way (or
    the night's time ran out)."""
    done = True
    for index in _indexes(name, valid=True):
        if time.monotonic() >= until:
            return False
        statement = sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(index))
        if not _run(statement, advisory=True):
            logger.warning(
                "Index %s of %s not compacted (busy); the next night retries", index, name
            )
            done = False
    if done:
        done = _run(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(
                sql.Identifier(name), sql.Literal(COMPACTED_COMMENT)
            )
        )
    return done


def _run(statement: sql.Composable, *, advisory: bool = False) -> bool:
    """One autocommit statement; False when it gave way to a busy lock (or the partition went)."""
    # Behind a pooler in transaction mode a session advisory lock would stay on a server
    # connection this one may not get back: there DETACH's lock conflict keeps them apart.
    advisory = advisory and not settings.DATABASE_POOLED
    with connection.cursor() as cursor:
        try:
            if advisory:
                cursor.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
            try:
                cursor.execute(statement.as_string(None))
            finally:
                if advisory:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_LOCK_KEY])
        except DatabaseError as exc:
            if isinstance(exc.__cause__, _GIVE_WAY):
                return False
            raise
    return True


class _bounded_waits:
    """lock_timeout = LOCK_TIMEOUT_MS and no statement limit for the connection's session, put
    back afterwards. Behind a pooler in transaction mode a session setting would leak onto
    other clients' connections: the role's defaults apply there (DATABASE_LOCK_TIMEOUT,
    DATABASE_STATEMENT_TIMEOUT), and a rebuild they cut short is retried the next night."""

    def __enter__(self) -> None:
        self.saved = None
        if settings.DATABASE_POOLED:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
            )
            self.saved = cursor.fetchone()
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, false), "
                "set_config('statement_timeout', '0', false)",
                [f"{LOCK_TIMEOUT_MS}ms"],
            )

    def __exit__(self, *exc) -> None:
        if self.saved is None:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, false), "
                "set_config('statement_timeout', %s, false)",
                list(self.saved),
            )
