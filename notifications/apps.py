from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from accounts.services import secret_reencrypter_register
        from notifications import checks  # noqa: F401  (registers the start-up checks)
        from notifications.erasure import erasers_register
        from notifications.models import NotificationType
        from notifications.services.sends import notification_type_cache
        from notifications.services.upkeep import twilio_auth_tokens_reencrypt

        # rotate_secrets re-encrypts the environments' Twilio auth tokens too.
        secret_reencrypter_register(
            name="Twilio auth token", reencrypt=twilio_auth_tokens_reencrypt
        )

        # A user's erasure (logs.erasure) deletes the pipeline's copies of their data too.
        erasers_register()

        for signal in (post_save, post_delete):
            signal.connect(
                notification_type_cache.clear,
                sender=NotificationType,
                dispatch_uid=f"notifications.type_cache.{signal}",
            )
