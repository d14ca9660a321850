"""GET /metrics: a Prometheus collector that reads PostgreSQL.

Counting in the database (not in-process counters) gives every gunicorn worker and every
Celery worker the same answer, whichever one Prometheus happens to scrape. Every query is an
index range over a recent window (METRICS_WINDOW_SECONDS, by the time a row was created or
received) or reads a small table (outbox, pending inbox rows): a scrape never scans the whole
log. Refused callbacks are the exception: they are counted in Redis (insights.services), so
that a flood of forged callbacks writes no database row.

The window counts still go through an hour of the log (at ten million notifications a day,
some 400,000 notifications and as many deliveries): too much for every scrape of every
Prometheus replica. They are counted at most once per METRICS_CACHE_SECONDS for all the
processes (kept in the shared cache, Redis), by the first scrape that finds them older;
`notificationlog_metrics_window_age_seconds` says how old they are. The backlogs (small
tables, a partial index) and the refusals (Redis) are read at every scrape.
"""

import contextlib
import logging
from collections.abc import Iterator
from datetime import timedelta

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from insights.services import callback_refusals
from webhooks.models import InboxState

logger = logging.getLogger(__name__)

PREFIX = "notificationlog"
# Seconds from a callback's arrival to its events being on the timeline.
FRESHNESS_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

# Per live environment (a LATERAL join), so each count is a range of the
# (environment, created_at) index of the day partitions the window touches. Grouped by the
# environment too (one group per lateral row: the same counts): Citus pushes such a lateral
# join down to the shards only when its GROUP BY holds the distribution column.
_NOTIFICATIONS_BY_STATUS = """
SELECT env.client_id, counted.status, counted.notifications
FROM accounts_environment env
CROSS JOIN LATERAL (
    SELECT status, count(*) AS notifications FROM logs_notification
    WHERE environment_id = env.id AND created_at >= %(since)s GROUP BY environment_id, status
) counted
WHERE env.deleting_at IS NULL
"""
_DELIVERIES_BY_STATE = """
SELECT env.client_id, counted.channel, counted.state, counted.state_detail, counted.deliveries
FROM accounts_environment env
CROSS JOIN LATERAL (
    SELECT channel, state, state_detail, count(*) AS deliveries FROM logs_delivery
    WHERE environment_id = env.id AND notification_created_at >= %(since)s
    GROUP BY environment_id, channel, state, state_detail
) counted
WHERE env.deleting_at IS NULL
"""
# Per state, a range of the inbox_state index (state, received_at).
_CALLBACKS_BY_STATE = """
SELECT counted.provider, states.state, counted.callbacks
FROM unnest(%(states)s::text[]) AS states(state)
CROSS JOIN LATERAL (
    SELECT provider, count(*) AS callbacks FROM webhooks_inbox
    WHERE state = states.state AND received_at >= %(since)s GROUP BY provider
) counted
"""
# Scheduled sends not due yet are not backlog.
_OUTBOX_BACKLOG = """
SELECT count(*), extract(epoch FROM clock_timestamp() - min(due_at))
FROM notifications_outbox WHERE due_at <= clock_timestamp()
"""
# The partial index inbox_pending_due holds exactly the pending rows.
_INBOX_BACKLOG = """
SELECT provider, count(*), extract(epoch FROM clock_timestamp() - min(received_at))
FROM webhooks_inbox WHERE state = 'pending' GROUP BY provider
"""
_FRESHNESS_BUCKET_COUNTS = ", ".join(
    f"count(*) FILTER (WHERE seconds <= {bound})" for bound in FRESHNESS_BUCKETS
)
_FRESHNESS = f"""
SELECT provider, {_FRESHNESS_BUCKET_COUNTS}, count(*), coalesce(sum(seconds), 0)
FROM (
    SELECT provider, extract(epoch FROM processed_at - received_at) AS seconds
    FROM webhooks_inbox
    WHERE state = 'processed' AND received_at >= %(since)s AND processed_at IS NOT NULL
) processed
GROUP BY provider
"""  # noqa: S608 (our bucket bounds)


def _rows(sql: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchall()


def _window_note() -> str:
    return f"in the last {settings.METRICS_WINDOW_SECONDS} s"


# The window counts, shared by every process through the cache: {"counted_at": epoch
# seconds, "rows": {query name: rows}}. The lock lets one scrape count while the others
# serve the previous counts.
WINDOW_CACHE_KEY = "metrics:window"
_WINDOW_LOCK_KEY = "metrics:window:counting"
_WINDOW_QUERIES = {
    "notifications": _NOTIFICATIONS_BY_STATUS,
    "deliveries": _DELIVERIES_BY_STATE,
    "callbacks": _CALLBACKS_BY_STATE,
    "freshness": _FRESHNESS,
}


def _window_count() -> dict:
    now = timezone.now()
    since = now - timedelta(seconds=settings.METRICS_WINDOW_SECONDS)
    params = {"since": since, "states": list(InboxState.values)}
    rows = {name: _rows(sql, params) for name, sql in _WINDOW_QUERIES.items()}
    return {"counted_at": now.timestamp(), "rows": rows}


def window_counts() -> dict:
    """The window counts, counted again when older than METRICS_CACHE_SECONDS. A cache that
    does not answer (Redis down) costs a count per scrape, never a missing metric."""
    try:
        counts = cache.get(WINDOW_CACHE_KEY)
    except redis.RedisError:
        return _window_count()
    fresh = (
        counts is not None
        and timezone.now().timestamp() - counts["counted_at"] < settings.METRICS_CACHE_SECONDS
    )
    if fresh:
        return counts
    try:
        locked = cache.add(_WINDOW_LOCK_KEY, True, timeout=60)
    except redis.RedisError:
        locked = False
    if not locked and counts is not None:
        return counts  # another scrape is counting: these are at most a count behind
    try:
        counts = _window_count()
        # Kept past its freshness so that a scrape finding another one counting has
        # something to serve.
        cache.set(WINDOW_CACHE_KEY, counts, timeout=settings.METRICS_CACHE_SECONDS * 10)
    except redis.RedisError:
        logger.warning("/metrics: the cache did not answer; window counts not kept")
    finally:
        if locked:
            with contextlib.suppress(redis.RedisError):
                cache.delete(_WINDOW_LOCK_KEY)
    return counts


class LogCollector(Collector):
    """Every family of /metrics: the window counts (window_counts), the rest at scrape time."""

    def collect(self) -> Iterator:
        counts = window_counts()
        rows = counts["rows"]
        yield self._notifications(rows["notifications"])
        yield self._deliveries(rows["deliveries"])
        yield self._callbacks(rows["callbacks"])
        yield self._refusals()
        yield from self._outbox()
        yield from self._inbox()
        yield self._freshness(rows["freshness"])
        yield GaugeMetricFamily(
            f"{PREFIX}_metrics_window_age_seconds",
            "How long ago the window counts (notifications, deliveries, callbacks_accepted, "
            "callback_freshness_seconds) were counted: at most METRICS_CACHE_SECONDS, "
            "plus the time one count takes.",
            value=max(0.0, timezone.now().timestamp() - counts["counted_at"]),
        )

    def _notifications(self, rows: list[tuple]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            f"{PREFIX}_notifications",
            f"Notifications created {_window_note()}, by environment (client id) and status.",
            labels=["environment", "status"],
        )
        for client_id, status, count in rows:
            family.add_metric([client_id, status], count)
        return family

    def _deliveries(self, rows: list[tuple]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            f"{PREFIX}_deliveries",
            f"Deliveries of notifications created {_window_note()}, by environment, channel, "
            "current state and sub-kind (blank: none).",
            labels=["environment", "channel", "state", "sub_kind"],
        )
        for client_id, channel, state, sub_kind, count in rows:
            family.add_metric([client_id, channel, state, sub_kind], count)
        return family

    def _callbacks(self, rows: list[tuple]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            f"{PREFIX}_callbacks_accepted",
            f"Provider callbacks authenticated and stored in the inbox {_window_note()}, by "
            "provider and inbox state (rejected: authentic but could not apply).",
            labels=["provider", "state"],
        )
        for provider, state, count in rows:
            family.add_metric([provider, state], count)
        return family

    def _refusals(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            f"{PREFIX}_callbacks_refused",
            "Provider callbacks refused before the inbox (bad or missing signature, unknown "
            "environment, receiver not configured), by provider and HTTP status, counted in "
            "Redis (since it last started).",
            labels=["provider", "status"],
        )
        try:
            refusals = callback_refusals()
        except redis.RedisError:
            logger.warning("/metrics: Redis did not answer; callbacks_refused left out")
            return family
        for provider, status, count in refusals:
            family.add_metric([provider, str(status)], count)
        return family

    def _outbox(self) -> Iterator[GaugeMetricFamily]:
        [(backlog, age)] = _rows(_OUTBOX_BACKLOG)
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_backlog",
            "Accepted sends that are due and not dispatched yet.",
            value=backlog,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_oldest_age_seconds",
            "How long the oldest due, undispatched send has waited (0: none).",
            value=float(age or 0),
        )

    def _inbox(self) -> Iterator[GaugeMetricFamily]:
        backlog = GaugeMetricFamily(
            f"{PREFIX}_inbox_backlog",
            "Provider callbacks stored and not processed yet (pending), by provider.",
            labels=["provider"],
        )
        age = GaugeMetricFamily(
            f"{PREFIX}_inbox_oldest_age_seconds",
            "How long the oldest pending callback has waited, by provider.",
            labels=["provider"],
        )
        for provider, count, oldest in _rows(_INBOX_BACKLOG):
            backlog.add_metric([provider], count)
            age.add_metric([provider], float(oldest or 0))
        yield backlog
        yield age

    def _freshness(self, rows: list[tuple]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            f"{PREFIX}_callback_freshness_seconds",
            f"From a callback's arrival to its events being recorded, for callbacks processed "
            f"{_window_note()}, by provider.",
            labels=["provider"],
        )
        for provider, *counts, total, seconds in rows:
            buckets = [
                (str(bound), count) for bound, count in zip(FRESHNESS_BUCKETS, counts, strict=True)
            ]
            buckets.append(("+Inf", total))
            family.add_metric([provider], buckets, sum_value=float(seconds))
        return family


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LogCollector())
    return registry
