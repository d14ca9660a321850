from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from notifications import checks  # noqa: F401  (registers the start-up checks)
        from notifications.models import NotificationType
        from notifications.services import notification_type_cache

        for signal in (post_save, post_delete):
            signal.connect(
                notification_type_cache.clear,
                sender=NotificationType,
                dispatch_uid=f"notifications.type_cache.{signal}",
            )
