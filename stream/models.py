"""The outbound event stream: subscriptions, their outbox of messages and each attempt.

A message is one event for one subscription, with its body fixed when the event was
recorded (the log row may be purged before a slow subscriber takes it). Messages of one
notification to one subscription go out in id order: a later one waits while an earlier one
is pending (stream/services/delivery.py)."""

from urllib.parse import urlsplit

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from accounts.crypto import secret_decrypt
from accounts.models import Environment
from config.admin_display import moment_text
from logs.vocabulary import EventKind, EventSubKind


class PayloadFormat(models.TextChoices):
    # Standard Webhooks' {type, timestamp, data}: every kind and sub-kind of the log.
    STANDARD = "standard", "Standard Webhooks"
    # The reference product's events-webhook body: {eventType, trackingId, notificationId,
    # channel, userId}, only for the events it has a type for (stream/compat.py).
    NOTIFICATIONAPI = "notificationapi", "NotificationAPI compatible"


class Subscription(models.Model):
    """An HTTPS endpoint of an environment that receives the events of the chosen kinds."""

    environment = models.ForeignKey(
        Environment, on_delete=models.DB_CASCADE, related_name="stream_subscriptions"
    )
    url = models.URLField("endpoint URL", max_length=2000)
    kinds = ArrayField(
        models.CharField(max_length=12, choices=EventKind.choices),
        verbose_name="event kinds",
        help_text="The event kinds sent to this endpoint.",
    )
    sub_kinds = ArrayField(
        models.CharField(max_length=24, choices=EventSubKind.choices),
        default=list,
        blank=True,
        verbose_name="sub-kinds",
        help_text="Only these sub-kinds of the chosen kinds; none chosen: every sub-kind.",
    )
    payload_format = models.CharField(
        max_length=20, choices=PayloadFormat.choices, default=PayloadFormat.STANDARD
    )
    # Fernet token of the `whsec_…` signing secret (shown once at creation): signing needs it
    # back, so it is encrypted at rest, not hashed.
    secret_encrypted = models.TextField(editable=False)
    enabled = models.BooleanField(
        default=True, help_text="Re-enable a subscriber disabled after a day of failures here."
    )
    # The first failed attempt since the last success; a day of failures disables it.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["environment_id", "url"]
        verbose_name = "stream subscription"
        indexes = [models.Index(fields=["environment", "enabled"], name="stream_sub_env_enabled")]

    def __str__(self) -> str:
        # Never the whole URL (page titles, the messages' list, history): its path or query
        # may hold the receiver's secret, which only managers see (stream/admin.py).
        host = urlsplit(self.url).hostname or "?"
        return f"Subscription {self.pk} to {host}"

    def secret(self) -> str:
        return secret_decrypt(self.secret_encrypted)


class MessageState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    GIVEN_UP = "given_up", "Given up"


class StreamMessage(models.Model):
    """One event for one subscription: the outbox row, and its delivery state."""

    id = models.BigAutoField(primary_key=True)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.DB_CASCADE, related_name="messages"
    )
    environment = models.ForeignKey(Environment, on_delete=models.DB_CASCADE, related_name="+")
    # The log's ids, not foreign keys: the log is partitioned and purged on its own.
    notification_id = models.UUIDField("tracking id")
    event_id = models.BigIntegerField()
    event_type = models.CharField(max_length=60)
    # The webhook-id header: the same on every attempt and replay, so receivers can dedupe.
    webhook_id = models.CharField(max_length=40, unique=True)
    body = models.JSONField()
    state = models.CharField(
        max_length=10, choices=MessageState.choices, default=MessageState.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Retries run until retry_until (24 hours after the event or the replay), then give up.
    retry_until = models.DateTimeField()
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker sending it owns it until then; a dead worker's claim lapses.
    leased_until = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "stream message"
        indexes = [
            # The sweeper: pending messages due an attempt.
            models.Index(
                fields=["next_attempt_at"],
                name="stream_msg_pending_due",
                condition=models.Q(state="pending"),
            ),
            # A drain's claim: its subscription's pending messages in id order.
            models.Index(
                fields=["subscription", "id"],
                name="stream_msg_queue",
                condition=models.Q(state="pending"),
            ),
            # In order per notification: is an earlier message of it still pending?
            models.Index(
                fields=["subscription", "notification_id", "id"],
                name="stream_msg_chain",
                condition=models.Q(state="pending"),
            ),
            models.Index(fields=["environment", "-id"], name="stream_msg_env"),
            models.Index(fields=["notification_id"], name="stream_msg_tracking"),
            # The nightly purge's range (messages_purge).
            models.Index(fields=["created_at"], name="stream_msg_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.notification_id} → {self.subscription_id}"


class StreamAttempt(models.Model):
    """One POST of a message: its answer or the error."""

    message = models.ForeignKey(StreamMessage, on_delete=models.DB_CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # Why it failed, in a line (never the response body: it may echo the message).
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-attempted_at"]

    def __str__(self) -> str:
        # In the viewer's zone on a console page, UTC elsewhere (config/admin_display.py).
        return f"{self.status_code or self.error} at {moment_text(self.attempted_at)}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
