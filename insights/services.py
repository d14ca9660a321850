"""Writes of the insights app: count an event into the rollups, fold, rebuild, purge.

The counting rule, in one place for the live path (rollup_event_count) and the backfill
(rollups_rebuild): a notification counts once as received (its request-level Received); a
delivery (a notification's channel) counts once per kind it reached among Sent, Delivered,
Failed, Ignored and Engagement, in the hour of the notification's `created_at`. A
request-level Failed or Ignored counts on the blank channel.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from config.batches import rows_delete
from config.counters import counter_add, counters_read
from insights.models import COUNT_FIELDS, HourlyRollup, RollupDelta
from logs.models import Event, Notification
from logs.statements import StatementBatch, statement_run
from logs.vocabulary import EventKind

logger = logging.getLogger(__name__)

# The rollup column each counted event kind adds to (Sending is not counted).
COLUMN_BY_KIND = {
    EventKind.RECEIVED: "received",
    EventKind.SENT: "sent",
    EventKind.DELIVERED: "delivered",
    EventKind.FAILED: "failed",
    EventKind.IGNORED: "ignored",
    EventKind.ENGAGEMENT: "engaged",
}
# Advisory lock key (transaction-level): one fold batch or rebuild at a time, so they never
# deadlock on rollup rows.
ROLLUP_LOCK_KEY = 0x1A5B_0011
TEMPLATE_MAX_LENGTH = 255


def rollup_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def rollup_template(notification: Notification) -> str:
    # request_template_id, not the request: event_record does not read the request.
    return notification.request_template_id[:TEMPLATE_MAX_LENGTH]


_KEY_COLUMNS = "environment_id, hour, notification_type, channel, template"
_DELTA_INSERT = {
    column: (
        f"INSERT INTO {RollupDelta._meta.db_table} ({_KEY_COLUMNS}, {', '.join(COUNT_FIELDS)}) "  # noqa: S608 (our column names)
        f"VALUES (%s, %s, %s, %s, %s, "
        f"{', '.join('1' if name == column else '0' for name in COUNT_FIELDS)})"
    )
    for column in COUNT_FIELDS
}


def rollup_event_count(
    *,
    notification: Notification,
    event: Event,
    first_of_kind: bool,
    batch: StatementBatch | None = None,
) -> bool:
    """Add a newly recorded event to the rollups (as a delta, folded later). Returns whether
    it counted: only the first event of its kind for its delivery does, which the writer of
    the event knows (`first_of_kind`, from event_recorded: logs.signals). With a `batch` the
    delta is added to it."""
    column = COLUMN_BY_KIND.get(event.kind)
    if column is None or (column == "received" and event.channel):
        return False
    if not first_of_kind:
        return False
    statement_run(
        _DELTA_INSERT[column],
        [
            notification.environment_id,
            rollup_hour(notification.created_at.astimezone(timezone.UTC)),
            notification.notification_type,
            event.channel,
            rollup_template(notification),
        ],
        batch=batch,
    )
    return True


_SUMS = ", ".join(f"sum({name})" for name in COUNT_FIELDS)
_ADD_EXCLUDED = ", ".join(
    f"{name} = insights_hourlyrollup.{name} + EXCLUDED.{name}" for name in COUNT_FIELDS
)
_FOLD_SQL = f"""
WITH moved AS (
    DELETE FROM insights_rollupdelta
    WHERE id IN (SELECT id FROM insights_rollupdelta ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
    RETURNING {_KEY_COLUMNS}, {", ".join(COUNT_FIELDS)}
), folded AS (
    INSERT INTO insights_hourlyrollup ({_KEY_COLUMNS}, {", ".join(COUNT_FIELDS)})
    SELECT {_KEY_COLUMNS}, {_SUMS} FROM moved
    GROUP BY {_KEY_COLUMNS}
    -- Rows locked in key order: two folds could never deadlock (the advisory lock already
    -- keeps them apart; this keeps a hand-run fold safe too).
    ORDER BY {_KEY_COLUMNS}
    ON CONFLICT ({_KEY_COLUMNS}) DO UPDATE SET {_ADD_EXCLUDED}
    RETURNING 1
)
SELECT count(*) FROM moved
"""  # noqa: S608 (our column names)


@dataclass(frozen=True)
class FoldResult:
    deltas: int
    busy: bool = False


def _rollup_lock(cursor) -> bool:
    """A transaction-level advisory lock, tried, not waited for: one fold batch or rebuild at
    a time. It ends with the transaction that took it, so nothing is left on the connection
    (behind a pooler in transaction mode the next transaction may be another client's)."""
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROLLUP_LOCK_KEY])
    return cursor.fetchone()[0]


def rollups_fold(*, batch_size: int = 20_000, max_batches: int = 50) -> FoldResult:
    """Fold pending deltas into the rollups, a batch per short transaction, each holding the
    rollup lock. A fold or rebuild running makes this one step aside (busy) at its next
    batch: the next beat run folds the rest."""
    folded = 0
    with connection.cursor() as cursor:
        for _ in range(max_batches):
            with transaction.atomic():
                if not _rollup_lock(cursor):
                    return FoldResult(deltas=folded, busy=True)
                cursor.execute(_FOLD_SQL, [batch_size])
                moved = cursor.fetchone()[0]
            folded += moved
            if moved < batch_size:
                break
    return FoldResult(deltas=folded)


def _first_of_kind_sums() -> str:
    # Within one (hour, type, channel, template) group a notification has one delivery, so
    # "deliveries that reached kind K" is the number of distinct notifications with a K event.
    sums = []
    for kind, column in COLUMN_BY_KIND.items():
        condition = f"e.kind = '{kind.value}'"
        if column == "received":
            condition += " AND e.channel = ''"
        sums.append(f"count(DISTINCT e.notification_id) FILTER (WHERE {condition}) AS {column}")
    return ",\n       ".join(sums)


# Aggregates the log for the notifications the `scope` CTE selects (id, created_at,
# environment_id, notification_type, request) of one environment, `%(environment_id)s`,
# bucketed by `bucket` (an SQL expression of n.created_at). The counting rule of
# rollup_event_count, in SQL.
LOG_AGGREGATE_SQL = """
SELECT n.environment_id, {bucket} AS hour, n.notification_type, e.channel,
       left(coalesce(n.request->>'templateId', ''), %(template_max)s) AS template,
       {sums}
FROM scope n
JOIN (
    SELECT e.notification_id, e.channel, e.kind
    FROM scope n
    JOIN logs_event e
      ON e.notification_id = n.id AND e.notification_created_at = n.created_at
     AND e.environment_id = n.environment_id
    -- The scope's environment again, as a constant: on Citus (the log distributed by
    -- environment) the join then runs on that environment's shard alone.
    WHERE e.environment_id = %(environment_id)s AND e.kind IN ({kinds})
    UNION ALL
    -- The events folded into the deliveries (logs/timeline.py): a Sent sets sent_at and a
    -- Delivered that decided the state delivered_at, rows or not (counted once: DISTINCT).
    SELECT d.notification_id, d.channel, folded.kind
    FROM scope n
    JOIN logs_delivery d
      ON d.notification_id = n.id AND d.notification_created_at = n.created_at
     AND d.environment_id = n.environment_id
    CROSS JOIN LATERAL (VALUES ('sent', d.sent_at), ('delivered', d.delivered_at))
         AS folded (kind, at)
    WHERE d.environment_id = %(environment_id)s AND folded.at IS NOT NULL
    UNION ALL
    -- Every notification was received.
    SELECT n.id, '', 'received' FROM scope n
) e ON e.notification_id = n.id
GROUP BY 1, 2, 3, 4, 5
"""


def log_aggregate_sql(*, scope_sql: str, bucket: str = "date_trunc('hour', n.created_at)") -> str:
    kinds = ", ".join(f"'{kind.value}'" for kind in COLUMN_BY_KIND)
    aggregate = LOG_AGGREGATE_SQL.format(bucket=bucket, sums=_first_of_kind_sums(), kinds=kinds)
    return f"WITH scope AS MATERIALIZED ({scope_sql})\n{aggregate}"


_REBUILD_SCOPE_SQL = """
SELECT id, created_at, environment_id, notification_type, request FROM logs_notification
WHERE environment_id = %(environment_id)s AND created_at >= %(since)s AND created_at < %(until)s
"""


@dataclass(frozen=True)
class RebuildResult:
    rows: int
    busy: bool = False


def rollups_rebuild(
    *, environment_id: int, since: datetime, until: datetime | None = None
) -> RebuildResult:
    """Recompute one environment's rollups for the hours from `since` to `until` from the log
    itself (a backfill: this one scans the log), replacing what was there.

    The deletes and the aggregate read one snapshot (REPEATABLE READ), so an event committed
    meanwhile is either in the aggregate (and its delta, in the same snapshot, deleted) or
    not (and its delta, committed with it, folded later): never counted twice or lost."""
    since = rollup_hour(since)
    until = until or timezone.now() + timedelta(hours=1)
    params = {
        "environment_id": environment_id,
        "since": since,
        "until": until,
        "template_max": TEMPLATE_MAX_LENGTH,
    }
    scope = "environment_id = %(environment_id)s AND hour >= %(since)s AND hour < %(until)s"
    insert = (
        f"INSERT INTO insights_hourlyrollup ({_KEY_COLUMNS}, {', '.join(COUNT_FIELDS)}) "
        + log_aggregate_sql(scope_sql=_REBUILD_SCOPE_SQL)
    )
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:  # inside a caller's transaction (a test), its isolation stands
            # First statement of the transaction: it must come before the lock's SELECT. A
            # fold batch committing between this snapshot and the lock makes the deletes
            # below fail (concurrent update), never count twice: the next run rebuilds.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if not _rollup_lock(cursor):
            return RebuildResult(rows=0, busy=True)
        cursor.execute(f"DELETE FROM insights_rollupdelta WHERE {scope}", params)  # noqa: S608
        cursor.execute(f"DELETE FROM insights_hourlyrollup WHERE {scope}", params)  # noqa: S608
        cursor.execute(insert, params)
        rows = cursor.rowcount
    return RebuildResult(rows=rows)


def rollups_purge(*, retention_days: int) -> int:
    """Delete rollups of hours that ended more than `retention_days` ago, in short batches
    along the rollup_hour index (config/batches.py)."""
    cutoff = rollup_hour(timezone.now()) - timedelta(days=retention_days)
    return rows_delete(HourlyRollup.objects.filter(hour__lt=cutoff), order_by="hour")


# Callbacks refused before the inbox, by "provider:status" (config/counters.py).
REFUSALS_COUNTER = "callbacks_refused"


def callback_refusal_record(*, provider: str, status: int) -> None:
    """Count one callback refused before the inbox: one HINCRBY in Redis. Never a database
    write: every forged callback would update the same row, so a flood of them would queue
    on its lock and fill the WAL. Raises redis.RedisError when Redis does not answer."""
    counter_add(REFUSALS_COUNTER, f"{provider}:{status}")


def callback_refusals() -> list[tuple[str, int, int]]:
    """(provider, HTTP status, callbacks refused) since Redis last started."""
    counts = []
    for field, refused in counters_read(REFUSALS_COUNTER).items():
        provider, _, status = field.rpartition(":")
        counts.append((provider, int(status), refused))
    return sorted(counts)
