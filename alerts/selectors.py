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


def window_counts(*, rule: AlertRule, since: datetime) -> WindowCounts:
    """One index range scan of the counters (environment, minute ≥ since), summed."""
    rows = MinuteCount.objects.filter(environment_id=rule.environment_id, minute__gte=since)
    if rule.notification_type:
        rows = rows.filter(notification_type=rule.notification_type)
    if rule.channel:
        rows = rows.filter(channel=rule.channel)
    matching = Q(kind=rule.event_kind or "-")
    if rule.event_sub_kind:
        matching &= Q(sub_kind=rule.event_sub_kind)
    sums = rows.aggregate(
        failed=Sum(
            "count",
            filter=Q(kind=EventKind.FAILED) & ~Q(sub_kind=EventSubKind.DELIVERY_DELAY),
        ),
        delivered=Sum("count", filter=Q(kind=EventKind.DELIVERED)),
        sent=Sum("count", filter=Q(kind=EventKind.SENT)),
        matching=Sum("count", filter=matching),
    )
    return WindowCounts(**{name: value or 0 for name, value in sums.items()})


def rule_ids_enabled() -> list[int]:
    """Every enabled rule, for beat (which runs for every tenant)."""
    return list(AlertRule.objects.filter(enabled=True).order_by("id").values_list("id", flat=True))


def alert_list(*, environment_ids) -> QuerySet[Alert]:
    return Alert.objects.filter(environment_id__in=environment_ids).select_related("rule")
