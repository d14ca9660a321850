"""Reads of the insights page. Every one takes the environment (the tenant) and a period.

Counts by hour, day, type, channel and template come from the hourly rollups (an index range
of one environment's hours: never the log). A `narrow` ({column: value} of DIMENSIONS'
columns) keeps one type, channel and/or template: the series and breakdown of those only.
"For one user" reads the log through its user index instead (notif_env_user): a rollup per
user would multiply the rollups by the number of users, for a question asked about one user
at a time, whose history is short. It looks at most USER_MAX_NOTIFICATIONS notifications (the
newest) and says when it stopped there.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from accounts.models import Environment
from insights.models import COUNT_FIELDS, HourlyRollup
from insights.services import TEMPLATE_MAX_LENGTH, log_aggregate_sql

USER_MAX_NOTIFICATIONS = 10_000
GRANULARITY_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DIMENSIONS = {"type": "notification_type", "channel": "channel", "template": "template"}


@dataclass
class Counts:
    received: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    ignored: int = 0
    engaged: int = 0

    def add(self, row) -> None:
        for name in COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + (row[name] or 0))

    @property
    def rates(self) -> dict[str, float | None]:
        """Percentages: delivered, failed of sent; ignored of the channels decided (sent or
        ignored); engaged of delivered. None when the denominator is 0."""

        def percent(part: int, whole: int) -> float | None:
            return round(100.0 * part / whole, 1) if whole else None

        return {
            "delivered": percent(self.delivered, self.sent),
            "failed": percent(self.failed, self.sent),
            "ignored": percent(self.ignored, self.sent + self.ignored),
            "engaged": percent(self.engaged, self.delivered),
        }


@dataclass
class Series:
    """Counts per bucket (every bucket of the period, empty ones included)."""

    buckets: list[datetime]
    counts: dict[datetime, Counts]
    total: Counts = field(default_factory=Counts)
    # For one user: the search stopped at USER_MAX_NOTIFICATIONS (older ones not counted).
    truncated: bool = False


def _bucket_start(moment: datetime, granularity: str) -> datetime:
    moment = moment.astimezone(timezone.UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if granularity == "day" else moment


def _buckets(start: datetime, end: datetime, granularity: str) -> list[datetime]:
    step, bucket, buckets = GRANULARITY_STEP[granularity], _bucket_start(start, granularity), []
    while bucket < end:
        buckets.append(bucket)
        bucket += step
    return buckets


def _series(rows: Iterable, start: datetime, end: datetime, granularity: str) -> Series:
    buckets = _buckets(start, end, granularity)
    counts = {bucket: Counts() for bucket in buckets}
    series = Series(buckets=buckets, counts=counts)
    for row in rows:
        bucket = _bucket_start(row["bucket"], granularity)
        if bucket in counts:
            counts[bucket].add(row)
            series.total.add(row)
    return series


def _rollups(environment: Environment, start: datetime, end: datetime, narrow: dict | None):
    rollups = HourlyRollup.objects.filter(environment=environment, hour__gte=start, hour__lt=end)
    return rollups.filter(**(narrow or {}))


def _sums() -> dict:
    return {name: Sum(name) for name in COUNT_FIELDS}


def rollup_series(
    *,
    environment: Environment,
    start: datetime,
    end: datetime,
    granularity: str,
    narrow: dict | None = None,
) -> Series:
    rows = (
        _rollups(environment, start, end, narrow)
        .annotate(bucket=Trunc("hour", granularity, tzinfo=timezone.UTC))
        .values("bucket")
        .annotate(**_sums())
        .order_by("bucket")
    )
    return _series(rows, start, end, granularity)


def rollup_breakdown(
    *,
    environment: Environment,
    start: datetime,
    end: datetime,
    dimension: str,
    narrow: dict | None = None,
    limit: int = 20,
) -> list[tuple[str, Counts]]:
    """Totals of the period by type, channel or template, the largest (by received, then
    sent) first; at most `limit` of them."""
    column = DIMENSIONS[dimension]
    rows = (
        _rollups(environment, start, end, narrow)
        .values(column)
        .annotate(**_sums())
        .order_by("-received", "-sent", column)[:limit]
    )
    breakdown = []
    for row in rows:
        counts = Counts()
        counts.add(row)
        breakdown.append((row[column], counts))
    return breakdown


_USER_SCOPE_SQL = """
SELECT id, created_at, environment_id, notification_type, request FROM logs_notification
WHERE environment_id = %(environment_id)s AND user_id = %(user_id)s
  AND created_at >= %(since)s AND created_at < %(until)s
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s
"""


def user_series(
    *,
    environment: Environment,
    user_id: str,
    start: datetime,
    end: datetime,
    granularity: str,
    narrow: dict | None = None,
) -> Series:
    """One user's counts, by the same rule as the rollups, from the log (user index). The
    aggregate's rows carry the rollup key, so `narrow` applies to them as to the rollups."""
    params = {
        "environment_id": environment.id,
        "user_id": user_id,
        "since": start,
        "until": end,
        "limit": USER_MAX_NOTIFICATIONS + 1,
        "template_max": TEMPLATE_MAX_LENGTH,
    }
    bucket = f"date_trunc('{granularity}', n.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM logs_notification WHERE environment_id = "
            "%(environment_id)s AND user_id = %(user_id)s AND created_at >= %(since)s AND "
            "created_at < %(until)s LIMIT %(limit)s) found",
            params,
        )
        truncated = cursor.fetchone()[0] > USER_MAX_NOTIFICATIONS
        params["limit"] = USER_MAX_NOTIFICATIONS
        cursor.execute(log_aggregate_sql(scope_sql=_USER_SCOPE_SQL, bucket=bucket), params)
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    per_bucket: dict[datetime, dict] = defaultdict(lambda: dict.fromkeys(COUNT_FIELDS, 0))
    for row in rows:
        if any(row[column] != value for column, value in (narrow or {}).items()):
            continue
        for name in COUNT_FIELDS:
            per_bucket[row["hour"]][name] += row[name]
    series = _series(
        [{"bucket": bucket, **counts} for bucket, counts in per_bucket.items()],
        start,
        end,
        granularity,
    )
    series.truncated = truncated
    return series
