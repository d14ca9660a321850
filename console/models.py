"""The console's own settings, its audit of reveals and its resend links. They were created
in logs/ (logs 0004) and keep their tables' names (`db_table`): console 0001 took them over
without touching the database."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from logs.masking import DEFAULT_SENSITIVE_WORDS


def _default_words() -> list[str]:
    return list(DEFAULT_SENSITIVE_WORDS)


class ConsoleSettings(models.Model):
    """Per environment: which field names hold secrets that support must not read."""

    environment = models.OneToOneField(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="console_settings"
    )
    sensitive_words = ArrayField(
        models.CharField(max_length=50),
        default=_default_words,
        blank=True,
        help_text=(
            "A merge tag or request field whose name contains one of these words (any case, "
            "ignoring _ and -) is masked for support and viewers, with every occurrence of its "
            "value in the content. Comma-separated."
        ),
    )

    class Meta:
        db_table = "logs_consolesettings"
        verbose_name = "console settings"
        verbose_name_plural = "console settings"

    def __str__(self) -> str:
        return f"Console settings of {self.environment}"


class RevealRecord(models.Model):
    """One reveal of a notification's masked values: who, when, which notification."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DB_SET_NULL, null=True, related_name="+"
    )
    # Kept as text too: the record outlives the user account.
    username = models.CharField(max_length=150)
    # The log is partitioned and purged by day; the audit keeps the id, not a foreign key.
    notification_id = models.UUIDField("tracking id")
    revealed_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "logs_revealrecord"
        verbose_name = "masked-value reveal"
        ordering = ["-revealed_at"]
        indexes = [models.Index(fields=["environment", "-revealed_at"], name="reveal_env_time")]

    def __str__(self) -> str:
        when = f"{self.revealed_at:%Y-%m-%d %H:%M:%S}"
        return f"{self.username} revealed {self.notification_id} at {when}"


class ResendLink(models.Model):
    """A notification resent from the console: the original and the new one, so each
    timeline links to the other."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+"
    )
    # Tracking ids, not foreign keys: the log is partitioned and purged by day.
    original_id = models.UUIDField("original tracking id")
    resend_id = models.UUIDField("resend tracking id", unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DB_SET_NULL, null=True, related_name="+"
    )
    username = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "logs_resendlink"
        ordering = ["created_at"]
        indexes = [models.Index(fields=["original_id"], name="resend_original")]

    def __str__(self) -> str:
        return f"{self.original_id} resent as {self.resend_id} by {self.username}"
