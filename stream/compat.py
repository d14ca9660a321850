"""The reference product's events webhook (compatibility mode): which of our events it has an
`eventType` for, and its body.

NotificationAPI documents the body `{eventType, trackingId, notificationId, channel, userId}`
and the types OPEN, CLICK and <CHANNEL>_FAILED (reference/notificationapi-api.md). It is
silent on the rest, so this table decides; an event absent from it is not sent in this mode:

| our event                        | eventType          |
|----------------------------------|--------------------|
| Engagement - Opened (email)      | OPEN               |
| Engagement - Clicked (email)     | CLICK              |
| Failed, any sub-kind, email      | EMAIL_FAILED       |
| Failed, any sub-kind, SMS        | SMS_FAILED         |
| Failed, any sub-kind, call       | CALL_FAILED        |
| Failed, push                     | PUSH_FAILED        |
| Failed, web push                 | WEB_PUSH_FAILED    |
| Failed, in-app                   | INAPP_WEB_FAILED   |

Not sent: Received, Ignored, Sending, Sent, Delivered (no type exists for them), Complained
and Unsubscribed (the reference has no type), and a Failed of the whole request (no channel:
the reference's types are per channel).
"""

from logs.vocabulary import Channel, EventKind, EventSubKind

FAILED_TYPES: dict[str, str] = {
    Channel.EMAIL: "EMAIL_FAILED",
    Channel.SMS: "SMS_FAILED",
    Channel.CALL: "CALL_FAILED",
    Channel.PUSH: "PUSH_FAILED",
    Channel.WEB_PUSH: "WEB_PUSH_FAILED",
    Channel.IN_APP: "INAPP_WEB_FAILED",
}
ENGAGEMENT_TYPES: dict[str, str] = {EventSubKind.OPENED: "OPEN", EventSubKind.CLICKED: "CLICK"}
# The reference's channel names in its bodies.
CHANNEL_NAMES: dict[str, str] = {
    Channel.EMAIL: "EMAIL",
    Channel.SMS: "SMS",
    Channel.CALL: "CALL",
    Channel.PUSH: "PUSH",
    Channel.WEB_PUSH: "WEB_PUSH",
    Channel.IN_APP: "INAPP_WEB",
}
# What a subscription in this mode may choose (the rest could never send anything).
KINDS = frozenset({EventKind.FAILED, EventKind.ENGAGEMENT})
SUB_KINDS = frozenset(ENGAGEMENT_TYPES) | frozenset(
    {
        EventSubKind.BOUNCE,
        EventSubKind.DELIVERY_DELAY,
        EventSubKind.UNDELIVERED,
        EventSubKind.INFRASTRUCTURE,
        EventSubKind.CANNOT_REACH,
    }
)


def event_type(*, kind: str, sub_kind: str, channel: str) -> str | None:
    """The reference's eventType for one of our events, or None when it has none."""
    if kind == EventKind.FAILED:
        return FAILED_TYPES.get(channel)
    if kind == EventKind.ENGAGEMENT and channel == Channel.EMAIL:
        return ENGAGEMENT_TYPES.get(sub_kind)
    return None


def body(*, event_type: str, notification, channel: str) -> dict:
    return {
        "eventType": event_type,
        "trackingId": str(notification.id),
        "notificationId": notification.notification_type,
        "channel": CHANNEL_NAMES.get(channel, channel.upper()),
        "userId": notification.user_id,
    }
