"""The words of alert rules: what a rule watches, and what happened to an alert. Plain
constants, no database."""

from django.db import models


class RuleKind(models.TextChoices):
    # Failed / (Delivered + Failed) over the window, once enough outcomes came in.
    FAILURE_RATE = "failure_rate", "Failure rate above a threshold"
    # Events of one kind (and sub-kind) over the window: "more than 20 Failed - Bounce".
    EVENT_COUNT = "event_count", "Too many events of a kind"
    # Sends continue (Sent) on a channel but nothing is Delivered there.
    DELIVERY_SILENCE = "delivery_silence", "No Delivered while sends continue"


class Transition(models.TextChoices):
    FIRED = "fired", "Fired"
    RESOLVED = "resolved", "Resolved"


class NoticeChannel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class NoticeState(models.TextChoices):
    PENDING = "pending", "Pending"  # enqueued; retried with backoff until it goes or gives up
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # gave up after ALERTS_NOTICE_MAX_ATTEMPTS


# Hysteresis: a firing alert resolves only after its condition was false at this many
# consecutive evaluations (one a minute), so a rate hovering at the threshold does not flap.
RESOLVE_AFTER_CLEAR_EVALUATIONS = 2
# Longest window a rule may look back (minutes); counter rows older than this are purged.
WINDOW_MINUTES_MAX = 1440
