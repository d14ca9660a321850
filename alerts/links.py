"""The console search that shows what caused an alert, one click from it."""

from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from alerts.vocabulary import RuleKind
from logs.vocabulary import EventKind

# The search's event filter for each kind of rule: what made the condition hold.
_EVENT_BY_KIND = {RuleKind.FAILURE_RATE: EventKind.FAILED.value,
                  RuleKind.DELIVERY_SILENCE: EventKind.SENT.value}  # fmt: skip


def alert_search_path(*, alert, until: datetime) -> str:
    """The console's notification search (console/forms.py's SearchForm parameters) for the
    alert's environment, type, channel and event over the days of its window. Days are
    whole UTC days: the search filters by day, not minute."""
    rule = alert.rule
    params = {
        "environment": alert.environment_id,
        "type": rule.notification_type,
        "channel": rule.channel,
        "event": rule.event if rule.kind == RuleKind.EVENT_COUNT else _EVENT_BY_KIND[rule.kind],
        "date_from": alert.window_start.date().isoformat(),
        "date_to": until.date().isoformat(),
    }
    query = urlencode({name: value for name, value in params.items() if value})
    return f"{reverse('admin:logs_notification_changelist')}?{query}"


def alert_search_url(*, alert, until: datetime) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + alert_search_path(alert=alert, until=until)
