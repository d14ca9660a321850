"""The access audit: one row each time a person reads a notification's page, a user's
timeline, reveals masked values, resends, or exports a search. Its own app and table, kept
longer than the logs (AUDIT_RETENTION_DAYS) and never partitioned with them: a row must
outlive the notification it names, so it keeps tracking and user ids, not foreign keys."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AccessRecord(models.Model):
    class Action(models.TextChoices):
        NOTIFICATION = "notification", "Opened a notification"
        TIMELINE = "timeline", "Opened a user's timeline"
        REVEAL = "reveal", "Revealed masked values"
        RESEND = "resend", "Resent a notification"
        EXPORT = "export", "Exported a search"
        ERASE = "erase", "Erased a user's data"

    at = models.DateTimeField(default=timezone.now, editable=False)
    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+"
    )
    # Who: the console user, and their username as it was (the row outlives the user).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DB_SET_NULL, null=True, related_name="+"
    )
    actor_name = models.CharField("person", max_length=150)
    action = models.CharField(max_length=20, choices=Action.choices)
    # What: the notification, the user whose timeline was read, or the export's filters.
    tracking_id = models.UUIDField(null=True, blank=True)
    user_id = models.CharField("user id", max_length=255, blank=True)
    filters = models.JSONField(null=True, blank=True)
    row_count = models.PositiveIntegerField("rows", null=True, blank=True)
    # From where: the client address (the proxy's behind one, as for the login lockout) and
    # the browser, cut to a length no header can stretch.
    ip = models.GenericIPAddressField("address", null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = "access record"
        ordering = ["-at"]
        indexes = [
            # The console's list, newest first, per environment; then by person and by user
            # id (the two filters); and `at` alone for the purge.
            models.Index(fields=["environment", "-at"], name="audit_env_at"),
            models.Index(fields=["environment", "actor_name", "-at"], name="audit_env_actor_at"),
            models.Index(fields=["environment", "user_id", "-at"], name="audit_env_user_at"),
            models.Index(fields=["at"], name="audit_at"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name}: {self.get_action_display()} at {self.at:%Y-%m-%d %H:%M:%S}"
