"""Reads of the alerts app. Each takes the tenant (an environment, or the user's
environments through the admin's scoping)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet, Sum

from alerts.models import Alert, AlertRule, MinuteCount
from logs.vocabulary import EventKind, EventSubKind


@dataclass(frozen=True)
class WindowCounts:
    failed: int = 0  # Failed, except Delivery Delay (a later Delivered replaces it)
    delivered: int = 0
    sent: int = 0
    matching: int = 0  # the rule's own event kind (and sub-kind), for event count rules


def window_start(*, now: datetime, minutes: int) -> datetime:
    """The first minute of a window of `minutes` minutes ending with the current one."""
    return now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)


@dataclass(frozen=True)
class CountRow:
    notification_type: str
    channel: str
    kind: str
    sub_kind: str
    since: dict[datetime, int]  # window start -> events from then on


def environment_count_rows(*, environment_id: int, starts: set[datetime]) -> list[CountRow]:
    """An environment's counters summed per (type, channel, kind, sub-kind) from each window
    start its rules need: one range scan of the counters' key index (environment, minute ≥
    the earliest start), read once for all its rules, a few hundred rows back."""
    ordered = sorted(starts)
    sums = {
        f"from_{n}": Sum("count", filter=Q(minute__gte=start)) for n, start in enumerate(ordered)
    }
    rows = (
        MinuteCount.objects.filter(environment_id=environment_id, minute__gte=ordered[0])
        .values("notification_type", "channel", "kind", "sub_kind")
        .annotate(**sums)
        .order_by()
    )
    return [
        CountRow(
            row["notification_type"],
            row["channel"],
            row["kind"],
            row["sub_kind"],
            {start: row[f"from_{n}"] or 0 for n, start in enumerate(ordered)},
        )
        for row in rows
    ]


def window_counts(*, rule: AlertRule, rows: list[CountRow], since: datetime) -> WindowCounts:
    """The rule's sums over its window (pure: rows from environment_count_rows with `since`
    among their starts)."""
    failed = delivered = sent = matching = 0
    for row in rows:
        if rule.notification_type and row.notification_type != rule.notification_type:
            continue
        if rule.channel and row.channel != rule.channel:
            continue
        count = row.since[since]
        if row.kind == EventKind.FAILED and row.sub_kind != EventSubKind.DELIVERY_DELAY:
            failed += count
        elif row.kind == EventKind.DELIVERED:
            delivered += count
        elif row.kind == EventKind.SENT:
            sent += count
        if row.kind == rule.event_kind and row.sub_kind == (rule.event_sub_kind or row.sub_kind):
            matching += count
    return WindowCounts(failed=failed, delivered=delivered, sent=sent, matching=matching)


def environments_with_rules() -> list[int]:
    """Environments with an enabled rule (beat evaluates every tenant's)."""
    enabled = AlertRule.objects.filter(enabled=True).order_by("environment_id")
    return list(enabled.values_list("environment_id", flat=True).distinct())


def alert_list(*, environment_ids) -> QuerySet[Alert]:
    return Alert.objects.filter(environment_id__in=environment_ids).select_related("rule")
