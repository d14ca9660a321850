"""The catalogue (notification types and their channel templates) and user preferences.

The send pipeline that reads them arrives in a later issue; here they are the data it needs.
"""

from django.db import models
from django.utils import timezone

from logs.vocabulary import Channel


class NotificationType(models.Model):
    """A kind of notification an environment sends, keyed as NotificationAPI's
    `notificationId` (e.g. "order_tracking")."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="notification_types"
    )
    key = models.SlugField("notification id", max_length=100)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "key"], name="notification_type_unique")
        ]

    def __str__(self) -> str:
        return self.name or self.key


class ChannelTemplate(models.Model):
    """How a notification type renders on one channel (Liquid templates, as NotificationAPI's).
    `enabled` is the dashboard setting: a disabled channel is Ignored - Dashboard Preference."""

    notification_type = models.ForeignKey(
        NotificationType, on_delete=models.DB_CASCADE, related_name="templates"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(default=True)
    # Email: subject, html and text; SMS: text is the body; call: text is the script;
    # in-app: subject is the title, text the body.
    subject = models.TextField(blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["notification_type", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification_type", "channel"], name="channel_template_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.notification_type} / {self.get_channel_display()}"


class UserPreference(models.Model):
    """An end user's choice for a notification type (optionally one channel, optionally one
    sub-notification), as NotificationAPI's set_user_preferences sends it."""

    class Delivery(models.TextChoices):
        OFF = "off", "Off"
        INSTANT = "instant", "Instant"
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="user_preferences"
    )
    user_id = models.CharField(max_length=255)
    notification_type = models.CharField("notification id", max_length=100)
    # Empty: the preference applies to every channel of the type.
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    sub_notification_id = models.CharField(max_length=255, blank=True)
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.INSTANT)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user_id", "notification_type", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "user_id", "notification_type", "channel",
                        "sub_notification_id"],
                name="user_preference_unique",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        channel = self.get_channel_display() if self.channel else "all channels"
        return f"{self.user_id}: {self.notification_type} ({channel}) {self.get_delivery_display()}"
