"""In-app: the "provider" is the user's feed in our own database. Sent when stored;
Delivered when the user's client fetches it (notifications/services.py, in_app_feed_fetch)."""

from notifications.models import InAppNotification
from notifications.providers.base import Accepted, OutgoingMessage, Provider


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
