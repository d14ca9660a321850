"""The words support staff read: channels, statuses, event kinds and sub-kinds.

Labels are exactly what the console shows. A sub-kind belongs to one kind, so its label is
the full phrase ("Failed - Bounce", "Delivered - No Answer"): a filter or a timeline line reads
the same everywhere; it also fits some channels only (SUB_KINDS_BY_CHANNEL). Plain constants,
no database: the status rules import them too.
"""

from django.db import models


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    CALL = "call", "Call"
    IN_APP = "in_app", "In-App"
    PUSH = "push", "Push"
    WEB_PUSH = "web_push", "Web Push"


class NotificationStatus(models.TextChoices):
    RECEIVED = "received", "Received"  # accepted; not every channel has an outcome yet
    SUCCESS = "success", "Success"  # every channel that was not ignored reached the user
    FAILURE = "failure", "Failure"  # some channel that was not ignored failed


class DeliveryState(models.TextChoices):
    RECEIVED = "received", "Received"
    IGNORED = "ignored", "Ignored"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class EventKind(models.TextChoices):
    RECEIVED = "received", "Received"
    IGNORED = "ignored", "Ignored"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    ENGAGEMENT = "engagement", "Engagement"


# The pipeline's own kinds, which nearly every notification (and every channel it sends) has:
# about 98% of the log's events. The kind indexes hold only the other kinds (rare: Failed,
# Ignored, Engagement); a search for one of these reads the newest notifications or
# deliveries and checks each for the event (logs/search_conditions.py, docs/indexes.md).
UNIVERSAL_EVENT_KINDS = frozenset(
    {EventKind.RECEIVED, EventKind.SENDING, EventKind.SENT, EventKind.DELIVERED}
)


class EventSubKind(models.TextChoices):
    NONE = "", "None"
    # Ignored: an expected condition; the channel is not sent.
    DASHBOARD_PREFERENCE = "dashboard_preference", "Ignored - Dashboard Preference"
    USER_PREFERENCE = "user_preference", "Ignored - User Preference"
    PLAN_LIMIT = "plan_limit", "Ignored - Plan Limit"
    # Delivered (call): the call was placed and reached the phone.
    COMPLETED = "completed", "Delivered - Completed"
    BUSY = "busy", "Delivered - Busy"
    NO_ANSWER = "no_answer", "Delivered - No Answer"
    # Failed.
    BOUNCE = "bounce", "Failed - Bounce"  # email: permanent
    DELIVERY_DELAY = (
        "delivery_delay",
        "Failed - Delivery Delay",
    )  # email: a later Delivered replaces it
    UNDELIVERED = "undelivered", "Failed - Undelivered"  # SMS, with the carrier's error code
    INFRASTRUCTURE = "infrastructure", "Failed - Infrastructure"  # SMS
    CANNOT_REACH = "cannot_reach", "Failed - Cannot Reach"  # call
    # Engagement (email; Opened and Clicked in-app too): recorded; never changes a status.
    OPENED = "opened", "Engagement - Opened"
    CLICKED = "clicked", "Engagement - Clicked"
    COMPLAINED = "complained", "Engagement - Complained"
    UNSUBSCRIBED = "unsubscribed", "Engagement - Unsubscribed"


# Which sub-kinds each kind may carry (an empty sub-kind is always allowed).
SUB_KINDS_BY_KIND: dict[str, frozenset[str]] = {
    EventKind.IGNORED: frozenset(
        {EventSubKind.DASHBOARD_PREFERENCE, EventSubKind.USER_PREFERENCE, EventSubKind.PLAN_LIMIT}
    ),
    EventKind.DELIVERED: frozenset(
        {EventSubKind.COMPLETED, EventSubKind.BUSY, EventSubKind.NO_ANSWER}
    ),
    EventKind.FAILED: frozenset(
        {
            EventSubKind.BOUNCE,
            EventSubKind.DELIVERY_DELAY,
            EventSubKind.UNDELIVERED,
            EventSubKind.INFRASTRUCTURE,
            EventSubKind.CANNOT_REACH,
        }
    ),
    EventKind.ENGAGEMENT: frozenset(
        {
            EventSubKind.OPENED,
            EventSubKind.CLICKED,
            EventSubKind.COMPLAINED,
            EventSubKind.UNSUBSCRIBED,
        }
    ),
}


def event_label(kind: str, sub_kind: str = "") -> str:
    """What the timeline shows for an event: "Failed - Bounce", or "Sent"."""
    if sub_kind:
        return EventSubKind(sub_kind).label
    return EventKind(kind).label


# Which sub-kinds an event on each channel may carry (an empty sub-kind is always allowed).
# Bounce and a delivery delay happen to an email, Busy to a call: a sub-kind names what a
# channel's provider reported, so it must fit the channel as well as the kind
# (SUB_KINDS_BY_KIND). The reasons a channel is not sent (Ignored) fit every channel.
_IGNORED_REASONS = SUB_KINDS_BY_KIND[EventKind.IGNORED]
SUB_KINDS_BY_CHANNEL: dict[str, frozenset[str]] = {
    Channel.EMAIL: _IGNORED_REASONS
    | {
        EventSubKind.BOUNCE,
        EventSubKind.DELIVERY_DELAY,
        EventSubKind.OPENED,
        EventSubKind.CLICKED,
        EventSubKind.COMPLAINED,
        EventSubKind.UNSUBSCRIBED,
    },
    Channel.SMS: _IGNORED_REASONS | {EventSubKind.UNDELIVERED, EventSubKind.INFRASTRUCTURE},
    Channel.CALL: _IGNORED_REASONS
    | {
        EventSubKind.COMPLETED,
        EventSubKind.BUSY,
        EventSubKind.NO_ANSWER,
        EventSubKind.CANNOT_REACH,
    },
    # The user's app reports opening and clicking an item of the feed (in_app_update).
    Channel.IN_APP: _IGNORED_REASONS | {EventSubKind.OPENED, EventSubKind.CLICKED},
    Channel.PUSH: _IGNORED_REASONS,
    Channel.WEB_PUSH: _IGNORED_REASONS,
}

# The kinds an event may have without a channel, each with the sub-kinds it may carry there.
# Such an event belongs to the whole request: its Received, or an outcome reached before any
# channel was chosen (bad parameters or an unknown type: Failed with no sub-kind, which has
# no channel-specific reason; the plan limit or a preference: Ignored).
REQUEST_LEVEL_SUB_KINDS_BY_KIND: dict[str, frozenset[str]] = {
    EventKind.RECEIVED: frozenset(),
    EventKind.FAILED: frozenset(),
    EventKind.IGNORED: _IGNORED_REASONS,
}
# Of those, the outcomes: they decide a notification's status (logs.status.notification_status).
REQUEST_OUTCOME_KINDS = frozenset({EventKind.FAILED, EventKind.IGNORED})
