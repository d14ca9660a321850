"""Hourly rollups of the log, and the count of callbacks refused at the door.

A rollup row holds, for one environment, one hour (of the notifications' `created_at`, UTC),
one notification type, one channel (blank: the request itself) and one template, how many
notifications were received and how many of their deliveries reached Sent, Delivered,
Failed, Ignored and Engagement. Each delivery counts at most once per kind, whatever number
of events of that kind it has (a call's ringing and in-progress are two Sent events; a
delayed email is Failed - Delivery Delay and then Delivered: one failed, one delivered).
Bucketing by the notification's hour (not the event's) makes the rates cohort rates: of the
deliveries sent in that hour, how many were delivered, whenever the callback came.

Rollups outlive the log (INSIGHTS_ROLLUP_RETENTION_DAYS, 13 months by default) and are not
partitioned: a year of them is a few hundred thousand rows per environment.
"""

from django.db import models

COUNT_FIELDS = ("received", "sent", "delivered", "failed", "ignored", "engaged")


class _RollupKey(models.Model):
    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+", db_index=False
    )
    # The start of the notification's hour, UTC.
    hour = models.DateTimeField()
    notification_type = models.CharField("type", max_length=100)
    # Blank for the request itself (its Received, a request-level Failed or Ignored).
    channel = models.CharField(max_length=10, blank=True)
    # The send's templateId; blank when it named none (the type's default template).
    template = models.CharField(max_length=255, blank=True)

    class Meta:
        abstract = True


class HourlyRollup(_RollupKey):
    received = models.BigIntegerField(default=0)
    sent = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    ignored = models.BigIntegerField(default=0)
    engaged = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "insights"
        verbose_name_plural = "insights"
        constraints = [
            # Also the page's index: environment, then a range of hours.
            models.UniqueConstraint(
                fields=["environment", "hour", "notification_type", "channel", "template"],
                name="rollup_unique_key",
            )
        ]
        indexes = [models.Index(fields=["hour"], name="rollup_hour")]  # the 13-month purge

    def __str__(self) -> str:
        return f"{self.notification_type}/{self.channel or 'request'} at {self.hour:%Y-%m-%d %H}:00"


class RollupDelta(_RollupKey):
    """What one recorded event adds to a rollup, written in the event's own transaction.

    WORKAROUND for hot rows: every event of one type and channel in one hour would update the
    same rollup row, and that row lock would be held until the recording transaction commits,
    serialising concurrent workers (and deadlocking two transactions that touch two rows in
    opposite orders). Appending a delta row takes no shared lock; beat folds deltas into the
    rollups every INSIGHTS_FOLD_INTERVAL_SECONDS (insights.services.rollups_fold)."""

    id = models.BigAutoField(primary_key=True)
    received = models.SmallIntegerField(default=0)
    sent = models.SmallIntegerField(default=0)
    delivered = models.SmallIntegerField(default=0)
    failed = models.SmallIntegerField(default=0)
    ignored = models.SmallIntegerField(default=0)
    engaged = models.SmallIntegerField(default=0)

    class Meta:
        indexes = [
            # The foreign key's index (deleting an environment finds its deltas by it), and
            # rollups_rebuild's range of hours.
            models.Index(fields=["environment", "hour"], name="rollup_delta_env_hour")
        ]

    def __str__(self) -> str:
        return f"delta {self.id}"
