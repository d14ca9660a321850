"""The in-app feed: items retracted, fetched (Delivered) and updated by the user's app
(Engagement - Opened / - Clicked)."""

import contextlib
import uuid

from django.utils import timezone

from accounts.models import Environment
from logs.models import Notification
from logs.services import event_record
from logs.vocabulary import Channel, EventKind, EventSubKind
from notifications import selectors
from notifications.models import InAppNotification
from notifications.services.end_users import rows_for_user_delete
from notifications.wire import InAppUpdate


def in_app_retract(
    *,
    environment: Environment,
    notification_type: str,
    user_id: str,
    sub_notification_id: str = "",
) -> int:
    """Remove a user's in-app notifications of a type (optionally one sub-notification)."""
    return rows_for_user_delete(
        InAppNotification,
        environment=environment,
        user_id=user_id,
        notification_type=notification_type,
        sub_notification_id=sub_notification_id,
    )


def in_app_feed_fetch(*, environment: Environment, user_id: str, limit: int = 50) -> list:
    """The user's feed, newest first. An item is Delivered once stored (the in-app provider's
    after_sent); a first fetch records the same event (once) for an item whose worker died
    before it could."""
    items = list(selectors.in_app_feed(environment=environment, user_id=user_id)[:limit])
    fresh = [item for item in items if item.delivered_at is None]
    now = timezone.now()
    for item in fresh:
        _in_app_event(
            notification_id=item.notification_id,
            notification_created_at=item.notification_created_at,
            environment_id=environment.id,
            kind=EventKind.DELIVERED,
            channel=Channel.IN_APP,
            source="in_app",
            occurred_at=now,
            dedupe_key="in_app:delivered",
            detail="The user's app fetched the notification.",
        )
        item.delivered_at = now
    if fresh:
        InAppNotification.objects.filter(pk__in=[item.pk for item in fresh]).update(
            delivered_at=now
        )
    return items


def _in_app_event(**kwargs) -> None:
    # The item's log may be purged (retention) before the item: then there is nothing to add.
    with contextlib.suppress(Notification.DoesNotExist):
        event_record(**kwargs)


# in-app update field → (InAppNotification column, the Engagement sub-kind it records, if
# any): opened and clicked are Engagement - Opened / - Clicked; archiving is kept on the feed
# item only.
_IN_APP_ENGAGEMENT = {
    "opened": ("opened_at", EventSubKind.OPENED),
    "clicked": ("clicked_at", EventSubKind.CLICKED),
    "archived": ("archived_at", ""),
}


def in_app_update(*, environment: Environment, user_id: str, update: InAppUpdate) -> int:
    """Record the user's opens and clicks as Engagement events; returns items updated."""
    items = list(
        InAppNotification.objects.filter(
            environment=environment, user_id=user_id, notification_id__in=_uuids(update)
        )
    )
    for item in items:
        for name, moment in update.moments.items():
            column, engagement = _IN_APP_ENGAGEMENT.get(name, ("", ""))
            if not column or getattr(item, column) is not None:
                continue
            setattr(item, column, moment)
            if engagement:
                _in_app_event(
                    notification_id=item.notification_id,
                    notification_created_at=item.notification_created_at,
                    environment_id=environment.id,
                    kind=EventKind.ENGAGEMENT,
                    sub_kind=engagement,
                    channel=Channel.IN_APP,
                    source="in_app",
                    occurred_at=moment,
                    dedupe_key=f"in_app:{name}",
                    detail=f"The user {name} the in-app notification.",
                )
        item.save(update_fields=["opened_at", "clicked_at", "archived_at"])
    return len(items)


def _uuids(update: InAppUpdate) -> list[uuid.UUID]:
    valid = []
    for value in update.tracking_ids:
        try:
            valid.append(uuid.UUID(value))
        except ValueError:
            continue  # an id that is no tracking id matches nothing
    return valid
