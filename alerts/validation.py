"""What makes an alert rule valid: each function returns {field: message} with what to fix,
so the console form shows the error next to the field it names. All are pure but the
webhook's, which resolves its host (config/outbound.py, the rule for every tenant URL)."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from alerts.vocabulary import WINDOW_MINUTES_MAX, RuleKind
from config import outbound
from logs.vocabulary import SUB_KINDS_BY_CHANNEL, SUB_KINDS_BY_KIND, Channel, EventKind

MIN_NOTIFICATIONS_MAX = 1_000_000


def event_errors(*, kind: str, event: str, channel: str) -> dict[str, str]:
    if kind != RuleKind.EVENT_COUNT:
        return {}
    if not event:
        return {"event": 'Name the event kind to count, e.g. "failed" or "failed:bounce".'}
    event_kind, _, sub_kind = event.partition(":")
    if event_kind not in EventKind.values:
        return {
            "event": f"Unknown event kind {event_kind!r}; use one of {', '.join(EventKind.values)}."
        }
    if sub_kind and sub_kind not in SUB_KINDS_BY_KIND.get(event_kind, ()):
        allowed = ", ".join(sorted(SUB_KINDS_BY_KIND.get(event_kind, ()))) or "none"
        return {
            "event": f"{sub_kind!r} is not a sub-kind of {event_kind!r} (its sub-kinds: {allowed})."
        }
    if sub_kind and channel and sub_kind not in SUB_KINDS_BY_CHANNEL[channel]:
        return {
            "event": f"{sub_kind!r} never happens on the {channel} channel; "
            "clear the channel or pick another sub-kind."
        }
    return {}


def threshold_errors(
    *,
    kind: str,
    window_minutes: int | None,
    threshold_percent: Decimal | None,
    min_notifications: int | None,
    max_events: int | None,
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if window_minutes is None or not 1 <= window_minutes <= WINDOW_MINUTES_MAX:
        errors["window_minutes"] = f"The window must be from 1 to {WINDOW_MINUTES_MAX} minutes."
    if min_notifications is None or not 1 <= min_notifications <= MIN_NOTIFICATIONS_MAX:
        errors["min_notifications"] = f"Give a number from 1 to {MIN_NOTIFICATIONS_MAX:,}."
    if kind == RuleKind.FAILURE_RATE and (
        threshold_percent is None or not 0 <= threshold_percent < 100
    ):
        errors["threshold_percent"] = (
            "A failure rate rule needs a threshold from 0 to 99.99 (%): it fires above it."
        )
    if kind == RuleKind.EVENT_COUNT and max_events is None:
        errors["max_events"] = "An event count rule needs a number: it fires above it (0 or more)."
    return errors


def channel_errors(*, kind: str, channel: str) -> dict[str, str]:
    if channel and channel not in Channel.values:
        return {"channel": f"Unknown channel {channel!r}; use one of {', '.join(Channel.values)}."}
    if kind == RuleKind.DELIVERY_SILENCE and not channel:
        return {"channel": "A no-Delivered rule watches one channel: choose it."}
    return {}


def webhook_errors(*, url: str) -> dict[str, str]:
    """The install's rule for every address a tenant makes it call (config/outbound.py)."""
    if not url:
        return {}
    try:
        outbound.url_check(url)
    except ValidationError as exc:
        return {"webhook_url": exc.messages[0]}
    return {}


def recipients_errors(*, email_recipients: str, webhook_url: str) -> dict[str, str]:
    addresses = [a.strip() for a in email_recipients.split(",") if a.strip()]
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            return {
                "email_recipients": f"{address!r} is not an email address "
                "(separate addresses with commas)."
            }
    if not addresses and not webhook_url:
        return {"email_recipients": "Give at least one email address or a webhook URL to tell."}
    return {}
