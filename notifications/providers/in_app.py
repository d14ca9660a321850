"""In-app: the "provider" is the user's feed in our own database. Sent when the item is
stored; Delivered as soon as Sent is recorded, because the item is then in the user's feed
(the reference product counts in-app as delivered there too). Opened and Clicked come from the
user's app (notifications/services/in_app.py, in_app_update) as Engagement - Opened / - Clicked."""

from logs.services import event_record
from logs.vocabulary import Channel, EventKind
from notifications.models import InAppNotification
from notifications.providers.base import Accepted, OutgoingMessage, Provider

# The Delivered event's dedupe key: the feed fetch (in_app_feed_fetch) records Delivered under
# the same key, for an item whose after_sent never ran (its worker died between the two), so
# an item is Delivered once, whichever comes first.
DELIVERED_KEY = "in_app:delivered"


class InAppProvider(Provider):
    name = "in_app"

    def send(self, message: OutgoingMessage) -> Accepted:
        # Keyed by the tracking id: a re-run after a crash finds the item it already stored.
        item, _ = InAppNotification.objects.get_or_create(
            notification_id=message.notification_id,
            defaults={
                "environment_id": message.environment_id,
                "user_id": message.user_id,
                "notification_created_at": message.notification_created_at,
                "notification_type": message.notification_type,
                "sub_notification_id": message.sub_notification_id,
                "title": message.content.text,
                "url": message.content.url,
                "image": message.content.image,
            },
        )
        return Accepted(provider_message_id=f"inapp-{item.pk}", reports_delivery=True)

    def after_sent(self, message: OutgoingMessage, accepted: Accepted) -> None:
        # After Sent is committed, so the timeline reads Sent, then Delivered.
        event_record(
            notification_id=message.notification_id,
            notification_created_at=message.notification_created_at,
            environment_id=message.environment_id,
            kind=EventKind.DELIVERED,
            channel=Channel.IN_APP,
            source=self.name,
            dedupe_key=DELIVERED_KEY,
            detail="In the user's in-app feed.",
        )
