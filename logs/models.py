"""The log: Notification, Delivery, Event.

All three tables are range-partitioned by day on the notification's `created_at` (deliveries
and events carry it as `notification_created_at`), so a notification's rows live in one day
and retention drops whole days. PostgreSQL requires the partition column in every primary
key and unique constraint: the database key holds the id and the day while Django sees `id`
alone, and relations between the partitioned tables are plain columns (`db_constraint=False`). The
tables are created by hand-written SQL in the migrations (logs/partitions.py has the DDL);
indexes and constraints below are declared as usual and PostgreSQL propagates them to every
partition. Once the tables exist, an index is added, changed or removed by the operations of
logs/migration_operations.py (online, a partition at a time), never by a plain AddIndex:
the migration linter (config/migration_lint.py) refuses that.

Every primary key and unique constraint also holds `environment_id`, the column the log is
meant to be distributed by on Citus (which requires it in each of them). It comes last: keys
are (id, created_at, environment_id) and (id, notification_created_at, environment_id), so a
lookup by id (and day) is still a range of the primary key index, with no second index to
keep up. CHECK constraints keep every channel, kind, sub-kind, status and state to the words
of logs/vocabulary.py, whoever writes the row (COPY, SQL by hand, a future service).
"""

import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import HashIndex, OpClass
from django.db import models
from django.db.models.functions import Lower
from django.utils.functional import cached_property
from django.utils.timezone import now

from logs.vocabulary import (
    REQUEST_LEVEL_SUB_KINDS_BY_KIND,
    SUB_KINDS_BY_CHANNEL,
    SUB_KINDS_BY_KIND,
    UNIVERSAL_EVENT_KINDS,
    Channel,
    DeliveryState,
    EventKind,
    EventSubKind,
    NotificationStatus,
    event_label,
)


def request_merge_tags(request: Any) -> dict:
    """The merge tags a send request gives: its `mergeTags`, else the newer SDKs'
    `parameters` (notifications.wire reads a send the same way), else none.

    A notification whose stored merge tags are NULL has these, so what this returns for a
    stored request must never change (a rule of its own, not the parser's: the parser may
    learn new spellings, rows already written must read as they did)."""
    if not isinstance(request, Mapping):
        return {}
    tags = request.get("mergeTags")
    if tags is None:
        tags = request.get("parameters")
    return tags if isinstance(tags, dict) else {}


def merge_tags_stored(merge_tags: Mapping[str, Any], request: Any) -> dict | None:
    """What a new notification stores for `merge_tags`: None when they are the request's own
    (the same JSON: a number is not its boolean), else a copy."""
    if _same_json(merge_tags, request_merge_tags(request)):
        return None
    return dict(merge_tags)


def _same_json(a: Any, b: Any) -> bool:
    # Python's == takes True for 1 and 1 for 1.0; JSON (and jsonb) keeps them apart.
    if a is b:
        return True
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same_json(a[key], b[key]) for key in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(map(_same_json, a, b))
    return type(a) is type(b) and a == b


def _newest_first(*leading: str) -> list:
    # Every search index ends with the keyset-pagination order, newest first. Not the id
    # that breaks ties: it would add 16 bytes to every entry (about a quarter of the index),
    # and the rows that share an instant are so few that putting them in id order as they
    # come out (an Incremental Sort, logs 0022) costs nothing a search can measure.
    return [*leading, models.F("created_at").desc()]


def _one_of(field: str, choices: type[models.TextChoices], name: str) -> models.CheckConstraint:
    # Generated from the vocabulary: a new word there shows up as a migration to write.
    return models.CheckConstraint(condition=models.Q(**{f"{field}__in": choices.values}), name=name)


# The condition of the kind indexes: an event of a rare kind (not one of the pipeline's
# universal ones). A search's plan, made once for any values, can use them only when its text
# names the kind itself (logs/search_conditions.py, _kind_q).
_RARE_KIND = ~models.Q(kind__in=sorted(UNIVERSAL_EVENT_KINDS))


def _sub_kind_fits_kind() -> models.CheckConstraint:
    fits = models.Q(sub_kind="")
    for kind, sub_kinds in sorted(SUB_KINDS_BY_KIND.items()):
        fits |= models.Q(kind=kind, sub_kind__in=sorted(sub_kinds))
    return models.CheckConstraint(condition=fits, name="event_sub_kind_fits_kind")


def _sub_kind_fits_channel(field: str, name: str) -> models.CheckConstraint:
    # The service refuses "Delivered - Busy" on an email; this keeps a hand-written INSERT or
    # a bulk load from slipping one in. A blank channel (request-level event) carries only
    # the sub-kinds a request-level outcome may have.
    fits = models.Q(**{field: ""}) | models.Q(
        channel="", **{f"{field}__in": sorted(REQUEST_LEVEL_SUB_KINDS_BY_KIND[EventKind.IGNORED])}
    )
    for channel, sub_kinds in sorted(SUB_KINDS_BY_CHANNEL.items()):
        fits |= models.Q(channel=channel, **{f"{field}__in": sorted(sub_kinds)})
    return models.CheckConstraint(condition=fits, name=name)


class Notification(models.Model):
    """One send() request: who it was for, what was asked, and where it stands."""

    id = models.UUIDField("tracking id", primary_key=True, default=uuid.uuid4, editable=False)
    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+", db_index=False
    )
    # The catalogue key (NotificationAPI's notificationId), e.g. "order_tracking".
    notification_type = models.CharField("type", max_length=100)
    user_id = models.CharField("user id", max_length=255)
    email = models.CharField(max_length=320, blank=True)
    # E.164, normalised on the way in (see logs/phone.py), so a search matches any spelling.
    number = models.CharField("phone number", max_length=32, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    # The merge tags the notification is rendered with, read and set as `merge_tags` (below).
    # NULL when they are the request's own (request_merge_tags: a send's always are), so they
    # are not stored twice; a value when they differ (a scheduled send given new ones since,
    # or a row written before logs 0021). Nullable, so making it so was a catalog change.
    stored_merge_tags = models.JSONField(db_column="merge_tags", null=True, blank=True)
    # The original request body, verbatim, for the logs API's requestFilter and for support.
    request = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.RECEIVED
    )
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)
    idempotency_key = models.CharField(max_length=255, blank=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    # Set when the environment's content retention cleared this notification's content
    # (request, merge tags, its deliveries' subject and bodies, provider payloads): the days
    # it was kept, for the notice shown instead (logs/content_retention.py). Null: not cleared.
    # A plain smallint: a Positive field's CHECK would make adding the column scan every
    # partition under an exclusive lock; only that job writes it.
    content_cleared_after = models.SmallIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [_one_of("status", NotificationStatus, "notification_status_valid")]
        indexes = [
            models.Index(*_newest_first("environment"), name="notif_env_created"),
            models.Index(*_newest_first("environment", "user_id"), name="notif_env_user"),
            # Includes the address itself and keeps the id: an email-prefix search finds its
            # page's keys, (created_at, id), in this index alone (an index-only scan), however
            # many addresses share the prefix, and reads only the page's rows
            # (logs/selectors.py).
            models.Index(
                *_newest_first("environment", OpClass(Lower("email"), name="text_pattern_ops")),
                models.F("id").desc(),
                name="notif_env_email",
                include=["email"],
            ),
            models.Index(*_newest_first("environment", "number"), name="notif_env_number"),
            models.Index(*_newest_first("environment", "notification_type"), name="notif_env_type"),
            # Partial: a search for success (most rows) reads notif_env_created and checks the
            # status; the others (failure, received: a few rows) read this. docs/indexes.md.
            models.Index(
                *_newest_first("environment", "status"),
                name="notif_env_status",
                condition=~models.Q(status=NotificationStatus.SUCCESS),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification_type} to {self.user_id} ({self.id})"

    @property
    def merge_tags(self) -> dict:
        """The merge tags: their own when stored, else the request's (the same object as in
        `request`: change them by setting this, never in place)."""
        if self.stored_merge_tags is not None:
            return self.stored_merge_tags
        return request_merge_tags(self.request)

    @merge_tags.setter
    def merge_tags(self, value: Mapping[str, Any]) -> None:
        self.stored_merge_tags = dict(value)

    @cached_property
    def request_template_id(self) -> str:
        """The request's templateId ('' when it named none, or named it as anything but a
        string). event_record reads it alone, not the request (up to 1 MB), and sets it here
        (a cached_property takes an instance attribute) for the event_recorded receivers."""
        request = self.request if isinstance(self.request, dict) else {}
        template = request.get("templateId")
        return template if isinstance(template, str) else ""


class Delivery(models.Model):
    """One channel of a notification: its state, the provider's id for it, and the content
    exactly as it was sent."""

    id = models.BigAutoField(primary_key=True)
    notification = models.ForeignKey(
        Notification,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="deliveries",
    )
    # Partition column: the notification's created_at, so the delivery lives in its day.
    notification_created_at = models.DateTimeField()
    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+", db_index=False
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.RECEIVED
    )
    # The sub-kind that decided the state: why it failed or was ignored, how a call ended.
    state_detail = models.CharField(
        max_length=24, choices=EventSubKind.choices, blank=True, default=""
    )
    provider = models.CharField(max_length=50, blank=True)
    provider_message_id = models.CharField("provider message id", max_length=255, blank=True)
    # False for providers that never report delivery (plain SMTP): Sent is then final.
    reports_delivery = models.BooleanField(default=True)
    # Where it was sent. Blank on a delivery that was sent (it has a provider) when it is the
    # notification's own address for the channel (channel_address: dispatch sends there), so
    # it is not stored twice; read it with destination_of (logs.selectors gives the readers
    # deliveries with it filled in). Blank without a provider: not sent.
    destination = models.CharField(max_length=320, blank=True)
    # The rendered content exactly as sent. `text` is the email's text part, the SMS body,
    # the call script or the in-app title.
    subject = models.TextField(blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    # Or the HTML and text compressed with the template as dictionary (logs/content.py; read
    # through logs.content.deliveries_content): html and text are then empty. Nullable with
    # no default, so adding them was a catalog change on each partition.
    content_packed = models.BinaryField(null=True, blank=True, editable=False)
    content_dictionary_id = models.IntegerField(null=True, blank=True, editable=False)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=now)
    # The send pipeline's own events, folded into the delivery instead of stored as rows
    # (docs/event-storage.md; logs/timeline.py re-derives them field for field): when the
    # first attempt's Sending was recorded, and the SEND_MAX_ATTEMPTS it said ("Attempt 1 of
    # N"); when the pipeline's Sent was recorded (sent_at may be a provider's earlier Sent);
    # an email's sender (the Sending's envelope when it held `from` alone). Null: not folded
    # (rows written before logs 0020, or an event not exactly representable, kept as a row).
    # Nullable with no default: adding them was a catalog change on each partition.
    sending_at = models.DateTimeField(null=True, blank=True, editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Null, not '': a column added without a default, and no byte in the rows without one.
    sender = models.TextField(null=True, blank=True, editable=False)  # noqa: DJ001
    send_max_attempts = models.SmallIntegerField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "channel", "notification_created_at", "environment"],
                name="delivery_unique_channel",
            ),
            _one_of("channel", Channel, "delivery_channel_valid"),
            _one_of("state", DeliveryState, "delivery_state_valid"),
            _one_of("state_detail", EventSubKind, "delivery_state_detail_valid"),
            _sub_kind_fits_channel("state_detail", "delivery_state_detail_fits_channel"),
        ]
        indexes = [
            # Webhooks look a delivery up by the provider's id without knowing the tenant: an
            # equality only, so a hash index (a 4-byte hash per row, not the id itself).
            HashIndex(
                "provider_message_id",
                name="delivery_provider_msg",
                condition=~models.Q(provider_message_id=""),
            ),
            models.Index(
                "environment",
                "channel",
                models.F("notification_created_at").desc(),
                models.F("notification").desc(),
                name="delivery_env_channel",
            ),
            # A channel with a status ("SMS + Failure"): one range per (state, reports
            # delivery) that has that status (logs.status.delivery_states_of_status).
            models.Index(
                "environment",
                "channel",
                "state",
                "reports_delivery",
                models.F("notification_created_at").desc(),
                models.F("notification").desc(),
                name="delivery_env_channel_state",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} for {self.notification_id}"

    def destination_of(self, notification: Notification) -> str:
        """Where it was sent: `destination`, or (blank, on a delivery that was sent) the
        notification's address for its channel."""
        if self.destination or not self.provider:
            return self.destination
        return channel_address(notification, self.channel)


def channel_address(notification: Notification, channel: str) -> str:
    """The notification's address for a channel: its email, its number (SMS and calls), else
    its user id (in-app, push). Where dispatch sends, and what a delivery's blank destination
    stands for: rows rely on it, so it never changes."""
    if channel == Channel.EMAIL:
        return notification.email
    if channel in (Channel.SMS, Channel.CALL):
        return notification.number
    return notification.user_id


class ContentDictionary(models.Model):
    """A template's text, the dictionary its deliveries' content is compressed with
    (logs/content.py): content-addressed, immutable, one row per environment and text. A
    plain table (not partitioned, not distributed on Citus: like the other environment-keyed
    tables, logs/citus.py), read on its own by id, never joined with the log; it goes with its
    environment (accounts/deletion.py finds it by its foreign key)."""

    id = models.AutoField(primary_key=True)  # 4 bytes in each delivery that points here
    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+", db_index=False
    )
    sha256 = models.BinaryField(max_length=32)
    content = models.BinaryField()
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        verbose_name_plural = "content dictionaries"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "sha256"], name="content_dictionary_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Content dictionary {self.id} ({len(self.content)} bytes)"


class Event(models.Model):
    """One line of a notification's timeline."""

    id = models.BigAutoField(primary_key=True)
    notification = models.ForeignKey(
        Notification,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="events",
    )
    notification_created_at = models.DateTimeField()
    delivery = models.ForeignKey(
        Delivery,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="events",
    )
    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    sub_kind = models.CharField(max_length=24, choices=EventSubKind.choices, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    # The provider's time when it gives one; else when we saw it happen.
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=now)
    # "api", "pipeline", or the provider's name ("twilio", "amazon_ses", "sandbox", ...).
    source = models.CharField(max_length=50)
    # Left empty: the provider's event id is said once, in dedupe_key (and in the payload the
    # provider wrote), and nothing reads it here. The column stays, written '', so code of
    # this release and the one before run against each other's schema; a later release
    # drops it (a catalog-only DROP COLUMN).
    provider_event_id = models.TextField(blank=True)
    # Idempotency: the caller's key, else "<source>:<the provider's event id>" (its digest
    # when that does not fit: logs.dedupe_keys.dedupe_key_choose), else a hash of what the
    # event says. A second event with the same key for the same notification is not recorded.
    dedupe_key = models.CharField(max_length=255)
    detail = models.TextField(blank=True)
    payload = models.JSONField(null=True, blank=True)
    # The payload compressed with its provider's dictionary (logs/payloads.py: a byte naming
    # the dictionary, then raw deflate), in place of `payload`, which then stays NULL. Read
    # both through logs.payloads.event_payload.
    payload_packed = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            # The same event once per notification. The key is indexed as its 64-bit hash
            # (PostgreSQL's hashtextextended, stable across versions: hash partitioning
            # relies on it), not as the key: 8 bytes in every entry of the log's largest
            # index instead of up to 255 (a provider's event id, about 45). Stricter than the
            # key itself: two different keys of one notification that hash alike (about one
            # in 10^18 for its handful of events) are refused, never both recorded.
            # event_record compares the keys themselves (_recorded_events reads them by
            # notification id, which this index also answers).
            models.UniqueConstraint(
                models.F("notification"),
                models.Func(
                    models.F("dedupe_key"),
                    models.Value(0),
                    function="hashtextextended",
                    output_field=models.BigIntegerField(),
                ),
                models.F("notification_created_at"),
                models.F("environment"),
                name="event_unique_dedupe",
            ),
            _one_of("kind", EventKind, "event_kind_valid"),
            # Blank: a request-level event (Received, or a Failed/Ignored before any channel).
            models.CheckConstraint(
                condition=models.Q(channel="") | models.Q(channel__in=Channel.values),
                name="event_channel_valid",
            ),
            # Also keeps out unknown sub-kinds: each known one belongs to a kind.
            _sub_kind_fits_kind(),
            _sub_kind_fits_channel("sub_kind", "event_sub_kind_fits_channel"),
        ]
        indexes = [
            # Every event of an environment: tenant deletion and per-account retention
            # (batched deletes by environment), the foreign key to the environment. One
            # column, so B-tree deduplication keeps it to about 6 bytes per event.
            models.Index("environment", name="event_env"),
            # Kind and sub-kind searches read these newest first. Only the rare kinds: the
            # universal ones (the pipeline's, on nearly every notification) are found from
            # the newest notifications or deliveries instead (logs/search_conditions.py). A sub-kind
            # is rare within its kind (No Answer among millions of Delivered), so it has its
            # own, partial index: only events that have a sub-kind.
            models.Index(
                "environment",
                "kind",
                models.F("notification_created_at").desc(),
                models.F("notification").desc(),
                name="event_env_kind",
                condition=_RARE_KIND,
            ),
            models.Index(
                "environment",
                "sub_kind",
                models.F("notification_created_at").desc(),
                models.F("notification").desc(),
                name="event_env_sub_kind",
                condition=~models.Q(sub_kind=""),
            ),
            # The same with a channel ("SMS + Failed"): the event must be that channel's.
            models.Index(
                "environment",
                "channel",
                "kind",
                models.F("notification_created_at").desc(),
                models.F("notification").desc(),
                name="event_env_channel_kind",
                condition=_RARE_KIND,
            ),
            models.Index(
                "environment",
                "channel",
                "sub_kind",
                models.F("notification_created_at").desc(),
                models.F("notification").desc(),
                name="event_env_channel_sub_kind",
                condition=~models.Q(sub_kind=""),
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return event_label(self.kind, self.sub_kind)


class PurgeRun(models.Model):
    """One run of the retention purge: install-wide (whole days dropped past
    LOG_RETENTION_DAYS) or for one account with a shorter retention (its older rows deleted
    in batches). Written by logs/retention.py; read-only in the console."""

    class Scope(models.TextChoices):
        INSTALL = "install", "Install-wide"
        ACCOUNT = "account", "Account"

    started_at = models.DateTimeField(default=now)
    scope = models.CharField(max_length=10, choices=Scope.choices)
    # The account's rows survive it as a name: the run stays on record.
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    account_name = models.CharField("account", max_length=200, blank=True)
    retention_days = models.PositiveSmallIntegerField()
    partitions_dropped = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    rows_deleted = models.BigIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    # What went wrong (busy partitions, a failed batch); empty when all went.
    errors = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="purge_run_started")]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} purge at {self.started_at:%Y-%m-%d %H:%M}"


class ErasureJob(models.Model):
    """A request to erase everything recorded about one end user of an environment (the
    logs, in-app items, preferences, end-user record, idempotency keys, stream and sandbox
    copies), run in the background in short batches by logs/erasure.py. The row itself names
    the user and who asked: it is the record that the erasure was asked for and done."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    OPEN_STATES = (State.QUEUED, State.RUNNING)

    id = models.UUIDField("job id", primary_key=True, default=uuid.uuid4, editable=False)
    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+"
    )
    user_id = models.CharField("user id", max_length=255)
    # Who asked: the console user (kept as a name too: the row outlives the person) or the
    # API credential ("API key nlk_ab12…", "client secret").
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="+",
    )
    requested_by = models.CharField("requested by", max_length=200)
    requested_at = models.DateTimeField(default=now, editable=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    # Rows removed per table, {"logs_notification": 12, ...}, kept up to date batch by batch.
    counts = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written with the counts after each batch: a running job whose heartbeat stopped lost
    # its worker, and the sweeper runs it again.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            # One open job per user: a second request while one is queued or running gets it.
            models.UniqueConstraint(
                fields=["environment", "user_id"],
                condition=models.Q(state__in=["queued", "running"]),
                name="erasure_one_open_per_user",
            )
        ]
        indexes = [
            models.Index(fields=["environment", "-requested_at"], name="erasure_env_requested"),
            # The sweeper: jobs left queued or running.
            models.Index(
                fields=["requested_at"],
                name="erasure_open",
                condition=models.Q(state__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"Erasure of {self.user_id} ({self.get_state_display()})"

    @property
    def rows_removed(self) -> int:
        return sum(self.counts.values())
