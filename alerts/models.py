"""Alert rules, the alerts they raise, the notices sent about them, and the per-minute
counters the rules are evaluated from (never the log itself)."""

from django.db import models
from django.utils.timezone import now

from alerts.vocabulary import NoticeChannel, NoticeState, RuleKind, Transition
from config.admin_display import moment_text
from logs.vocabulary import Channel


class MinuteCount(models.Model):
    """How many events of a (type, channel, kind, sub-kind) an environment recorded in one
    minute (by recorded_at). Kept by an upsert from logs.signals.event_recorded, in the
    transaction that wrote the event, so it never disagrees with the log.

    `shard` spreads one busy minute over several rows: every event of a burst would otherwise
    increment the same row and wait for the previous transaction's row lock (see
    alerts.counting). Readers sum over shards."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+", db_index=False
    )
    minute = models.DateTimeField()
    notification_type = models.CharField(max_length=100)
    channel = models.CharField(max_length=10, blank=True)
    kind = models.CharField(max_length=12)
    sub_kind = models.CharField(max_length=24, blank=True)
    shard = models.SmallIntegerField(default=0)
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # Also the index every evaluation reads: (environment, minute ≥ window start).
            models.UniqueConstraint(
                fields=[
                    "environment",
                    "minute",
                    "notification_type",
                    "channel",
                    "kind",
                    "sub_kind",
                    "shard",
                ],
                name="alerts_minute_count_key",
            )
        ]
        indexes = [models.Index("minute", name="alerts_minute_count_minute")]  # for the purge

    def __str__(self) -> str:
        return f"{self.count} {self.kind} at {self.minute:%H:%M}"


class AlertRule(models.Model):
    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="alert_rules"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    notification_type = models.CharField(
        "type",
        max_length=100,
        blank=True,
        help_text="A notification id of the catalogue; blank: every type.",
    )
    channel = models.CharField(
        max_length=10, choices=Channel.choices, blank=True, help_text="Blank: every channel."
    )
    event = models.CharField(
        "event kind",
        max_length=40,
        blank=True,
        help_text='Event count rules: "failed" or "failed:bounce" (kind, or kind:sub-kind).',
    )
    window_minutes = models.PositiveIntegerField("window (minutes)", default=10)
    threshold_percent = models.DecimalField(
        "threshold (%)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Failure rate rules: fires when the rate is above this.",
    )
    min_notifications = models.PositiveIntegerField(
        "at least",
        default=1,
        help_text="Failure rate: outcomes (Delivered + Failed) needed before the rate counts. "
        "No Delivered: Sent events that show sends continue.",
    )
    max_events = models.PositiveIntegerField(
        "more than", null=True, blank=True, help_text="Event count rules: fires above this many."
    )
    email_recipients = models.TextField(
        blank=True, help_text="Email addresses, comma-separated, told when it fires and resolves."
    )
    webhook_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="A Slack incoming webhook (or anything that accepts its JSON); HTTPS.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)
    # Evaluation state (written by alerts.evaluation only).
    evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    clear_streak = models.PositiveSmallIntegerField(default=0, editable=False)
    last_value = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["environment_id", "name"]
        indexes = [models.Index("enabled", "id", name="alerts_rule_enabled")]

    def __str__(self) -> str:
        return self.name

    @property
    def event_kind(self) -> str:
        return self.event.partition(":")[0]

    @property
    def event_sub_kind(self) -> str:
        return self.event.partition(":")[2]

    def recipients(self) -> list[str]:
        return [address.strip() for address in self.email_recipients.split(",") if address.strip()]


class Alert(models.Model):
    """One episode of a rule's condition: fired once, firing until it resolves."""

    rule = models.ForeignKey(AlertRule, on_delete=models.DB_CASCADE, related_name="alerts")
    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+"
    )
    fired_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The value that fired it (a percentage, or a count) and the latest one seen.
    fired_value = models.FloatField()
    last_value = models.FloatField()
    summary = models.TextField()
    # The window that fired it: the console link searches notifications of these days.
    window_start = models.DateTimeField()

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [
            # Fires once: at most one open alert per rule, whoever evaluates.
            models.UniqueConstraint(
                fields=["rule"],
                condition=models.Q(resolved_at__isnull=True),
                name="alerts_one_open_per_rule",
            )
        ]
        indexes = [models.Index(fields=["environment", "-fired_at"], name="alerts_alert_env_fired")]

    def __str__(self) -> str:
        # In the viewer's zone on a console page, UTC elsewhere (config/admin_display.py).
        return f"{self.rule.name}, fired {moment_text(self.fired_at)}"


class AlertNotice(models.Model):
    """One message about an alert's transition to one destination, sent by a Celery task."""

    alert = models.ForeignKey(Alert, on_delete=models.DB_CASCADE, related_name="notices")
    transition = models.CharField(max_length=10, choices=Transition.choices)
    channel = models.CharField(max_length=10, choices=NoticeChannel.choices)
    state = models.CharField(
        max_length=10, choices=NoticeState.choices, default=NoticeState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # A pending notice is claimed by pushing this forward (a lease), so the task, its retry
    # and the sweeper never send it at the same time; a failure sets it to the next try.
    next_attempt_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "transition", "channel"], name="alerts_notice_once"
            )
        ]
        indexes = [
            models.Index(
                "next_attempt_at", name="alerts_notice_due", condition=models.Q(state="pending")
            )
        ]

    def __str__(self) -> str:
        # "Email notice when it fired", not "Fired by Email" (it was not fired by an email).
        transition = self.get_transition_display().lower()
        return f"{self.get_channel_display()} notice when it {transition}"
