"""The inbox: every authentic provider callback, stored raw before the provider gets its 2xx.

Processing (webhooks/services.py) reads a row back, parses it with the provider's module and
records the events it carries; the row keeps the raw request beside what became of it, so
staff can see exactly what a provider said and replay it. The table is range-partitioned by
day on `received_at` (retention drops inbox days with the log's days; logs/partitions.py
manages the partitions): the database key is (id, received_at) while Django sees `id`.
"""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.db import models
from django.utils.timezone import now


class InboxState(models.TextChoices):
    PENDING = "pending", "Pending"  # stored; not processed yet, or waiting for its message
    PROCESSED = "processed", "Processed"  # its events are on the timeline
    # Authentic, but its message id matched no delivery within the retry window. Kept, and
    # adopted when a Sent with that id is recorded (webhooks.services.inbox_adopt).
    ORPHANED = "orphaned", "Orphaned"
    UNPARSEABLE = "unparseable", "Unparseable"  # authentic, but not a payload we can read
    # Authentic and readable, but it cannot apply: e.g. its message id matches deliveries of
    # several environments, or its event does not fit the delivery's channel.
    REJECTED = "rejected", "Rejected"


# The rows inbox_adopt looks through (its filter, and the predicate of its index: they must
# stay the same expression for PostgreSQL to use the index).
WAITING_FOR_MESSAGE = models.Q(state__in=[InboxState.ORPHANED, InboxState.PENDING]) & ~models.Q(
    message_ids=[]
)
ADOPT_INDEX = "inbox_adopt_ids"


class InboxEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    # Partition column.
    received_at = models.DateTimeField(default=now, db_index=False)
    # The receiver: "twilio_sms", "twilio_voice", or anymail's ESP key ("postmark", ...).
    provider = models.CharField(max_length=50)
    # The path and query string the provider called (no host: that is PUBLIC_BASE_URL).
    path = models.TextField()
    # The request headers that matter for parsing it again (never Authorization or cookies).
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField()
    # The environment the callback URL named (?env=<client id>), else the one its delivery
    # turned out to belong to once processed; empty until then.
    environment = models.ForeignKey(
        "accounts.Environment",
        on_delete=models.DB_CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # Set when the URL named the environment: the delivery lookup is restricted to it.
    environment_restricted = models.BooleanField(default=False)
    state = models.CharField(max_length=12, choices=InboxState.choices, default=InboxState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the sweeper should (re)try a pending row.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The provider message ids the payload names (known once parsed).
    message_ids = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    events_recorded = models.PositiveIntegerField(default=0)
    # Why the row is not processed: a parse error, the unknown id. Never the body.
    error = models.TextField(blank=True)

    class Meta:
        db_table = "webhooks_inbox"
        verbose_name = "inbox callback"
        verbose_name_plural = "inbox"
        ordering = ["-received_at", "-id"]
        indexes = [
            # The sweeper: pending rows that are due.
            models.Index(
                "next_attempt_at",
                name="inbox_pending_due",
                condition=models.Q(state="pending"),
            ),
            # inbox_adopt: the rows waiting for a message (orphaned, or pending with their ids
            # parsed), by the ids they name. A row just stored names none yet: it stays out,
            # so the index holds the few waiting rows, not every callback in flight.
            GinIndex("message_ids", name=ADOPT_INDEX, condition=WAITING_FOR_MESSAGE),
            # The staff view, newest first, by state and by environment.
            models.Index(
                "state", models.F("received_at").desc(), models.F("id").desc(), name="inbox_state"
            ),
            models.Index(
                "environment",
                models.F("received_at").desc(),
                models.F("id").desc(),
                name="inbox_env",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} callback {self.id} ({self.get_state_display()})"


class MessageEnvironment(models.Model):
    """Which environment a provider message id belongs to: written with the Sent that names
    it, on Citus only (webhooks/message_environments.py says why)."""

    pk = models.CompositePrimaryKey("provider_message_id", "environment_id")
    provider_message_id = models.CharField(max_length=255)
    # No foreign key: the row is written with every Sent, and a key would add a lookup of
    # the environment to each; environment ids are never reused, and a deleted
    # environment's rows find no delivery and age out with the log.
    environment_id = models.BigIntegerField()
    # The day of the log the delivery lives in: rows go when that day is dropped.
    notification_created_at = models.DateTimeField()

    class Meta:
        db_table = "webhooks_message_environment"
        indexes = [
            # The purge's range. Rows come in time order, so a block range index is a few
            # pages, and costs the writers next to nothing (a B-tree would be a second one).
            BrinIndex(fields=["notification_created_at"], name="message_environment_day"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_message_id} of environment {self.environment_id}"
