"""Content retention: an environment may keep the content of its notifications fewer days
than the log (as Postmark keeps bounce metadata longer than message content). Past it, a
nightly job clears what the user was sent and what it was made from, and keeps the rest:

- cleared: the deliveries' subject, HTML and text (email parts, SMS body, call script, in-app
  title), plain or compressed (logs/content.py; the template dictionaries stay: they hold
  no merge-tag value); the notification's merge tags; the stored request but for the
  fields that say what was sent to whom (REQUEST_KEPT, RECIPIENT_KEPT); the providers' raw
  callback payloads (an email provider's carries the subject and headers, a bounce report
  quotes the message), plain or compressed (logs/payloads.py).
- kept: ids, the addresses as the log keeps them (the notification's and the delivery's
  columns, the pipeline's Sending envelope, or the delivery's `sender` where that Sending is
  folded into it: logs/timeline.py), statuses and states, error codes and messages, times,
  and every timeline line with its detail.

A cleared notification carries `content_cleared_after` (the days kept), and the console page
and the API detail show CONTENT_CLEARED instead of empty content.

How it runs, so that it never holds up the log's writers:

- Environment by environment, oldest notification first along its (environment, created_at,
  id) index, `batch_size` notifications per batch, each batch one short transaction: the
  batch's notifications are locked FOR UPDATE SKIP LOCKED (a notification a writer holds, a
  late callback being recorded, is left for the next run instead of waited for), then their
  deliveries and events are updated by (notification id, day), so only those days'
  partitions are visited, then the notifications, then the environment's watermark.
- The watermark (Environment.content_cleared_through, with the id) is the last notification
  of a committed batch, written in that batch's transaction: the next run starts after it
  instead of re-reading the days cleared before. Once a run skips a locked notification (or
  a batch gives way to a lock), the watermark stops moving for the rest of that run, so the
  next run reads from there again and clears what was skipped; already cleared rows are
  passed over. Running twice, or two runs at once, is safe.
- Only single statements and transaction-local settings: no advisory or session locks, no
  temporary tables, so it works through PgBouncer in transaction mode.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from accounts.models import Environment

logger = logging.getLogger(__name__)

# Notifications per batch: their deliveries and events go in the same transaction (about
# 1.3 and 5 per notification), a few milliseconds of work.
CONTENT_BATCH = 500
# The longest a batch waits for a lock on a delivery or event row before giving way (the
# batch rolls back; the next run clears those rows). Transaction-local.
CONTENT_LOCK_TIMEOUT_MS = 1000
# How long one run of the nightly task clears before it stops between two batches and queues
# the next run (logs.tasks.content_retention_task): below the maintenance tasks' soft time
# limit (CELERY_TASK_ANNOTATIONS), so a big night is carried on, never cut off mid-batch.
CONTENT_RUN_SECONDS = 45 * 60
# Lock waits that make a batch give way rather than fail the run: lock_not_available (the
# lock timeout) and deadlock_detected.
_GIVE_WAY_SQLSTATES = frozenset({"55P03", "40P01"})

# What is left of a cleared request: the fields saying what was sent to whom, none of what
# it said. Merge tags (mergeTags, parameters), replacements, inline content (email, sms,
# inapp, ...) and options (attachments, other recipients) go.
REQUEST_KEPT = (
    "notificationId",
    "type",
    "templateId",
    "subNotificationId",
    "secondaryId",
    "schedule",
    "forceChannels",
)
# Of the recipient ("user", or "to" in the newer spelling): who, as the log's own columns
# keep it. Push tokens go.
RECIPIENT_KEPT = ("id", "email", "number", "timezone")
RECIPIENT_KEYS = ("user", "to")


def content_cleared_notice(days: int) -> str:
    """What the console page and the API detail say instead of the content."""
    return f"Content cleared after {days} day{'' if days == 1 else 's'} (content retention)"


@dataclass
class ContentClearing:
    environment_id: int
    retention_days: int
    # Notifications whose content this run cleared.
    cleared: int = 0
    # Left for the next run: locked by a writer when their batch came, or in a batch that
    # gave way to a lock.
    left: int = 0
    # False when the run stopped at its deadline with notifications past the cutoff unread.
    finished: bool = True


def content_retention_run(
    *, now: datetime | None = None, batch_size: int = CONTENT_BATCH, until: float | None = None
) -> list[ContentClearing]:
    """Clear the content past every environment's content retention (those that set one
    shorter than their log's retention; a longer one changes nothing: the log goes first).
    With `until` (a time.monotonic() value), stop between two batches once it is passed (after
    one batch at least): an environment not reached then is reported unfinished, and the next
    run carries on."""
    environments = Environment.objects.filter(content_retention_days__isnull=False).select_related(
        "account"
    )
    runs = []
    for environment in environments:
        if environment.content_retention_days >= environment.log_retention_days():
            continue
        if runs and until is not None and time.monotonic() > until:
            runs.append(
                ContentClearing(environment.id, environment.content_retention_days, finished=False)
            )
            continue
        runs.append(
            environment_content_clear(
                environment=environment, now=now, batch_size=batch_size, until=until
            )
        )
    return runs


def environment_content_clear(
    *,
    environment: Environment,
    now: datetime | None = None,
    batch_size: int = CONTENT_BATCH,
    until: float | None = None,
) -> ContentClearing:
    """Clear the content of the environment's notifications created more than its
    `content_retention_days` before `now`, in batches (see the module's docstring); with
    `until`, stop after the batch that passes it (at least one batch is done)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    days = environment.content_retention_days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    run = ContentClearing(environment_id=environment.id, retention_days=days)
    after = None
    if environment.content_cleared_through is not None:
        after = (environment.content_cleared_through, environment.content_cleared_through_id)
    advance = True
    while True:
        try:
            with transaction.atomic():
                window, cleared, left = _batch_clear(
                    environment.id, days, cutoff, after, batch_size
                )
                if not window:
                    break
                advance = advance and not left
                if advance:
                    _watermark_save(environment.id, window[-1][:2])
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in _GIVE_WAY_SQLSTATES:
                raise
            # The SQLSTATE only: a message may quote row values.
            logger.warning(
                "Content retention of environment %s: a batch gave way to a lock (%s); the "
                "next run clears it",
                environment.id,
                exc.__cause__.sqlstate,
            )
            window = _window(environment.id, cutoff, after, batch_size)
            cleared, left, advance = 0, sum(1 for row in window if row[2]), False
        run.cleared += cleared
        run.left += left
        if len(window) < batch_size:
            break
        after = window[-1][:2]
        if until is not None and time.monotonic() > until:
            run.finished = False
            break
    if run.cleared or run.left:
        logger.info(
            "Content retention of environment %s (%d days): %d notifications cleared, %d left "
            "for the next run",
            environment.id, days, run.cleared, run.left,
        )  # fmt: skip
    return run


_WINDOW = """
    SELECT created_at, id, content_cleared_after IS NULL FROM logs_notification
    WHERE environment_id = %s AND created_at < %s {after}
    ORDER BY created_at, id
    LIMIT %s
"""


def _window(environment_id: int, cutoff: datetime, after, batch_size: int) -> list[tuple]:
    """The next `batch_size` notifications past the cutoff, oldest first, after `after`
    ((created_at, id)), and whether each is still to clear: a backward range of the
    (environment, created_at DESC, id DESC) index, which starts where the last batch ended.
    Cleared ones are listed too, so the watermark can pass them."""
    params: list = [environment_id, cutoff]
    condition = ""
    if after is not None:
        # created_at >= ... as well: the planner prunes the days before it.
        condition = "AND created_at >= %s AND (created_at, id) > (%s, %s)"
        params += [after[0], *after]
    with connection.cursor() as cursor:
        cursor.execute(_WINDOW.format(after=condition), [*params, batch_size])
        return cursor.fetchall()


def _request_kept_sql() -> str:
    """The request reduced to REQUEST_KEPT and the recipient to RECIPIENT_KEPT, in SQL
    (requests are up to 1 MB: they are not fetched). jsonb_strip_nulls drops the absent.

    Built from immutable functions only (jsonb_each, jsonb_object_agg), not
    jsonb_build_object: that one is STABLE, and Citus refuses a STABLE function of a column in
    an UPDATE of a distributed table."""

    def names(kept: tuple[str, ...]) -> str:
        return ", ".join(f"'{name}'" for name in kept)

    # Names from the constants above, quoted: no input reaches this text.
    recipient = (
        "CASE WHEN jsonb_typeof(item.value) = 'object' THEN coalesce((SELECT "  # noqa: S608
        "jsonb_object_agg(part.key, part.value) FROM jsonb_each(item.value) AS part "
        f"WHERE part.key IN ({names(RECIPIENT_KEPT)})), '{{}}'::jsonb) END"
    )
    kept = (
        "SELECT jsonb_object_agg(item.key, CASE WHEN item.key IN "  # noqa: S608
        f"({names(RECIPIENT_KEYS)}) "
        f"THEN {recipient} ELSE item.value END) FROM jsonb_each(request) AS item "
        f"WHERE item.key IN ({names(REQUEST_KEPT + RECIPIENT_KEYS)})"
    )
    return (
        "jsonb_strip_nulls(CASE WHEN jsonb_typeof(request) = 'object' "
        f"THEN coalesce(({kept}), '{{}}'::jsonb) ELSE '{{}}'::jsonb END)"
    )


# Every statement names the environment and the batch's days (one shard, the days'
# partitions only). Rows with nothing left to clear are not rewritten.
_LOCK = """
    SELECT id FROM logs_notification
    WHERE environment_id = %s AND id = ANY(%s::uuid[]) AND created_at = ANY(%s::timestamptz[])
      AND content_cleared_after IS NULL
    FOR UPDATE SKIP LOCKED
"""
_DELIVERIES_CLEAR = """
    UPDATE logs_delivery
    SET subject = '', html = '', text = '', content_packed = NULL, content_dictionary_id = NULL
    WHERE environment_id = %s AND notification_id = ANY(%s::uuid[])
      AND notification_created_at = ANY(%s::timestamptz[])
      AND (subject <> '' OR html <> '' OR text <> '' OR content_packed IS NOT NULL)
"""
# The pipeline's Sending payload is the envelope (sender and recipients' addresses: kept,
# the page shows the sender); every other payload is a provider's callback.
_EVENTS_CLEAR = """
    UPDATE logs_event SET payload = NULL, payload_packed = NULL
    WHERE environment_id = %s AND notification_id = ANY(%s::uuid[])
      AND notification_created_at = ANY(%s::timestamptz[])
      AND (payload IS NOT NULL OR payload_packed IS NOT NULL)
      AND NOT (source = 'pipeline' AND kind = 'sending')
"""
_NOTIFICATIONS_CLEAR = f"""
    UPDATE logs_notification
    SET request = {_request_kept_sql()}, merge_tags = '{{}}'::jsonb, content_cleared_after = %s
    WHERE environment_id = %s AND id = ANY(%s::uuid[]) AND created_at = ANY(%s::timestamptz[])
"""  # noqa: S608 (field names from the constants above)


def _batch_clear(
    environment_id: int, days: int, cutoff: datetime, after, batch_size: int
) -> tuple[list[tuple], int, int]:
    """One batch, in the caller's transaction: the window of notifications it covers, how
    many it cleared, and how many still to clear it left (a writer held them locked)."""
    window = _window(environment_id, cutoff, after, batch_size)
    due = [row for row in window if row[2]]
    if not due:
        return window, 0, 0
    with connection.cursor() as cursor:
        if settings.DATABASE_CITUS:
            # The rows are locked on a worker node: Citus sends it the transaction's SET LOCAL
            # (not a set_config call) only when asked to, else the batch waits out the
            # statement timeout there instead of giving way.
            cursor.execute("SET LOCAL citus.propagate_set_commands = 'local'")
        cursor.execute(f"SET LOCAL lock_timeout = '{int(CONTENT_LOCK_TIMEOUT_MS)}ms'")
        ids = [row[1] for row in due]
        # The exact values, listed: the planner prunes to the partitions of those days.
        created = sorted({row[0] for row in due})
        cursor.execute(_LOCK, [environment_id, ids, created])
        locked = [row[0] for row in cursor.fetchall()]
        if locked:
            rows = [environment_id, locked, created]
            cursor.execute(_DELIVERIES_CLEAR, rows)
            cursor.execute(_EVENTS_CLEAR, rows)
            cursor.execute(_NOTIFICATIONS_CLEAR, [days, *rows])
    return window, len(locked), len(due) - len(locked)


def _watermark_save(environment_id: int, last: tuple) -> None:
    # Forward only: a concurrent run that got further keeps its mark.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_environment "
            "SET content_cleared_through = %s, content_cleared_through_id = %s "
            "WHERE id = %s AND (content_cleared_through IS NULL "
            "OR (content_cleared_through, content_cleared_through_id) < (%s, %s))",
            [*last, environment_id, *last],
        )
