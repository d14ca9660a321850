"""What a Resend will do, said before it is done: the channels it will send on (and to which
address), the ones that will be ignored and why, or why it cannot be resent. Read only.

The channel rule is the pipeline's (notifications.channel_rules.channels_chosen):
forceChannels when the request names them, else the type's channel templates and any inline
content. A channel the console turned off, or the user turned off for this type, is recorded
as Ignored, not sent; the plan limit is judged when the resend runs, so it is not foretold
here.
"""

from dataclasses import dataclass

from logs.models import Notification
from logs.vocabulary import Channel
from notifications.models import ChannelTemplate, UserPreference
from notifications.selectors import notification_type_get, user_preferences
from notifications.wire import RequestInvalid, send_request_parse

# Fields of the original request a resend does not repeat (console.services).
_NOT_REPEATED = ("schedule",)


@dataclass(frozen=True)
class PlannedChannel:
    channel: str
    label: str
    destination: str  # "alice@example.com", "+14155550100", or the user id (in-app)
    ignored_because: str  # empty: it will be sent


@dataclass(frozen=True)
class ResendPlan:
    channels: list[PlannedChannel]
    refused: str  # why it cannot be resent; empty when it can

    @property
    def sending(self) -> list[PlannedChannel]:
        return [c for c in self.channels if not c.ignored_because]

    @property
    def ignored(self) -> list[PlannedChannel]:
        return [c for c in self.channels if c.ignored_because]


def _destination(notification: Notification, channel: str) -> str:
    if channel == Channel.EMAIL:
        return notification.email or "no email address: it will fail"
    if channel in (Channel.SMS, Channel.CALL):
        return notification.number or "no phone number: it will fail"
    return f"user {notification.user_id}"


def resend_plan(*, notification: Notification) -> ResendPlan:
    raw = {k: v for k, v in (notification.request or {}).items() if k not in _NOT_REPEATED}
    try:
        request = send_request_parse(raw)
    except RequestInvalid as exc:
        return ResendPlan(channels=[], refused=f"its request is no longer valid: {exc}")
    if (
        notification_type_get(
            environment=notification.environment, key=notification.notification_type
        )
        is None
    ):
        return ResendPlan(
            channels=[],
            refused=f"its type {notification.notification_type!r} is no longer in the catalogue.",
        )
    templates = {
        template.channel: template
        for template in ChannelTemplate.objects.filter(
            notification_type__environment_id=notification.environment_id,
            notification_type__key=notification.notification_type,
        )
    }
    chosen = request.force_channels
    if chosen is None:
        chosen = set(templates) | set(request.content)
    channels = [channel for channel in Channel.values if channel in chosen]
    if not channels:
        return ResendPlan(
            channels=[],
            refused=f"{notification.notification_type!r} has no channel templates (or no longer "
            "exists): add a template in the console first.",
        )
    preferences = list(
        user_preferences(
            environment=notification.environment,
            user_id=notification.user_id,
            notification_type=notification.notification_type,
        )
    )
    planned = []
    for channel in channels:
        label = Channel(channel).label
        template = templates.get(channel)
        reason = ""
        if template is not None and not template.enabled:
            reason = "turned off in the console"
        elif _turned_off(preferences, channel, request.sub_notification_id):
            reason = f"user {notification.user_id} turned it off"
        planned.append(
            PlannedChannel(
                channel=channel,
                label=label,
                destination=_destination(notification, channel),
                ignored_because=reason,
            )
        )
    return ResendPlan(channels=planned, refused="")


def _turned_off(preferences, channel: str, sub_id: str) -> bool:
    """The most specific preference decides, as in the pipeline
    (notifications.channel_rules._preference_for)."""
    applicable = [
        p
        for p in preferences
        if p.channel in ("", channel) and p.sub_notification_id in ("", sub_id or "")
    ]
    if not applicable:
        return False
    chosen = max(applicable, key=lambda p: (bool(p.sub_notification_id), bool(p.channel)))
    return chosen.delivery == UserPreference.Delivery.OFF
