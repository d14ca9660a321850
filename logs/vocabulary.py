"""The words support staff read: channels, statuses, event kinds and sub-kinds.

Labels are exactly what the console shows. A sub-kind belongs to one kind, so its label is
the full phrase ("Failed - Bounce", "Delivered - No Answer"): a filter or a timeline line reads
the same everywhere. Plain constants, no database: the status rules import them too.
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
    # Engagement (email): recorded; never changes a status.
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
