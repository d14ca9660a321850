"""The console's writes: a resend, and the record of a reveal."""

import uuid

from django.db import transaction

from console.models import ResendLink, RevealRecord
from logs.content_retention import content_cleared_notice
from logs.models import Notification
from notifications.services.sends import notification_send
from notifications.wire import RequestInvalid, send_request_parse

# Fields of the original request a resend does not repeat: it goes now, and is a new send
# (the original's idempotency key would answer the original again).
_NOT_REPEATED = ("schedule",)


def notification_resend(*, notification: Notification, user) -> uuid.UUID:
    """Send the notification's original request again, as a new notification, and link the
    two. Raises notifications.wire.RequestInvalid (the stored request no longer parses) or
    notifications.services.sends.NotFound (its type was removed from the catalogue)."""
    if notification.content_cleared_after is not None:
        # What is left of the request would send the message without its merge tags.
        raise RequestInvalid(
            f"{content_cleared_notice(notification.content_cleared_after)}: the original "
            "request's content is no longer there to send again."
        )
    raw_request = {k: v for k, v in (notification.request or {}).items() if k not in _NOT_REPEATED}
    send_request = send_request_parse(raw_request)
    # One transaction: the new notification, its outbox row and the link commit together,
    # and the dispatch is enqueued after that commit.
    with transaction.atomic():
        accepted = notification_send(
            environment=notification.environment,
            send_request=send_request,
            raw_request=raw_request,
            source="console",
        )
        ResendLink.objects.create(
            environment=notification.environment,
            original_id=notification.id,
            resend_id=accepted.notification_id,
            user=user,
            username=user.get_username(),
        )
    return accepted.notification_id


def reveal_record(*, notification: Notification, user) -> RevealRecord:
    return RevealRecord.objects.create(
        environment=notification.environment,
        user=user,
        username=user.get_username(),
        notification_id=notification.id,
    )
