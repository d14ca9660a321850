"""Erasing everything recorded about one end user of an environment.

An erasure is a job (logs.models.ErasureJob): asked for through the API or the console, run
by a Celery task, resumed by a beat sweeper if its worker died. It deletes in short batches,
each its own transaction, so writers are never blocked for longer than one batch:

1. The user's notifications, `ERASURE_BATCH` at a time, newest first through the
   (environment, user_id, created_at) index. For each batch, in one transaction: the
   notifications are locked, then their events and deliveries (by notification id and the
   batch's day values, so only those days' partitions are visited), the copies other tables
   keep of them (stream messages, sandbox messages, in-app items, idempotency keys, outbox
   rows, provider callbacks in the webhooks inbox that name their deliveries), and then the
   notifications themselves. Every day partition is covered: the index is per partition and
   the batch walks all of them.
2. The rows keyed by the user id alone: in-app items, preferences, the end-user record.

What is kept, and why: the insights rollups (counts per hour, type and channel: no user id,
no address) keep their counts; the access audit (audit.AccessRecord) keeps the rows saying
who looked the user up, and gains one saying who erased them and how many rows went: the
audit exists to answer exactly that; the job row names the user for the same reason.

Running a job twice is safe: every step deletes what is still there, and the counts are
kept on the job batch by batch, so a resumed run adds to them.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Environment
from audit.models import AccessRecord
from config.batches import rows_delete
from config.enqueue import task
from logs.models import Delivery, ErasureJob, Event, Notification
from notifications.models import (
    EndUser,
    InAppNotification,
    Outbox,
    SandboxMessage,
    SendIdempotencyKey,
    UserPreference,
)
from stream.models import StreamMessage
from webhooks.models import InboxEntry

logger = logging.getLogger(__name__)

# Notifications per batch: each batch deletes them and their deliveries, events and copies
# in one transaction of a few milliseconds.
ERASURE_BATCH = 500
# A job still queued or running this long after it was asked for is run again by the sweeper
# (its task was lost, or its worker died).
ERASURE_STALE_SECONDS = 5 * 60

# Every table erase touches, in the order of the job's counts.
ERASED_TABLES = (
    Event._meta.db_table,
    Delivery._meta.db_table,
    StreamMessage._meta.db_table,
    SandboxMessage._meta.db_table,
    InboxEntry._meta.db_table,
    SendIdempotencyKey._meta.db_table,
    Outbox._meta.db_table,
    InAppNotification._meta.db_table,
    Notification._meta.db_table,
    UserPreference._meta.db_table,
    EndUser._meta.db_table,
)


def erasure_request(
    *, environment: Environment, user_id: str, requested_by: str, requested_by_user=None
) -> tuple[ErasureJob, bool]:
    """The open erasure job of `user_id`, or a new one, queued to run once the caller's
    transaction commits. Returns (job, created): a second request while one is queued or
    running gets the same job."""
    if not user_id or len(user_id) > ErasureJob._meta.get_field("user_id").max_length:
        raise ValueError("The user id must be 1 to 255 characters.")
    existing = _open_job(environment=environment, user_id=user_id)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            job = ErasureJob.objects.create(
                environment=environment,
                user_id=user_id,
                requested_by=requested_by[:200],
                requested_by_user=requested_by_user,
            )
    except IntegrityError:  # another request made it in between
        existing = _open_job(environment=environment, user_id=user_id)
        if existing is None:
            raise
        return existing, False
    transaction.on_commit(lambda: erasure_enqueue(job.id))
    return job, True


def _open_job(*, environment: Environment, user_id: str) -> ErasureJob | None:
    return ErasureJob.objects.filter(
        environment=environment, user_id=user_id, state__in=ErasureJob.OPEN_STATES
    ).first()


def erasure_enqueue(job_id) -> None:
    task("logs.tasks.erasure_run_task").delay(str(job_id))


def erasure_run(*, job_id, batch_size: int = ERASURE_BATCH) -> ErasureJob:
    """Run (or resume) the erasure job `job_id` to its end. A job already done or failed is
    returned as it is."""
    job = ErasureJob.objects.get(pk=job_id)
    if job.state not in ErasureJob.OPEN_STATES:
        return job
    ErasureJob.objects.filter(pk=job.pk).update(
        state=ErasureJob.State.RUNNING,
        started_at=job.started_at or timezone.now(),
        heartbeat_at=timezone.now(),
    )
    counts = {table: job.counts.get(table, 0) for table in ERASED_TABLES}

    def add(table: str, removed: int) -> None:
        counts[table] += removed

    def save_counts() -> None:
        ErasureJob.objects.filter(pk=job.pk).update(counts=counts, heartbeat_at=timezone.now())

    try:
        while _notifications_batch_erase(job=job, batch_size=batch_size, add=add):
            save_counts()
        user_rows = {"environment_id": job.environment_id, "user_id": job.user_id}
        add(
            InAppNotification._meta.db_table,
            rows_delete(
                InAppNotification.objects.filter(**user_rows),
                order_by="created_at",
                batch_size=batch_size,
            ),
        )
        add(
            UserPreference._meta.db_table,
            rows_delete(
                UserPreference.objects.filter(**user_rows), order_by="id", batch_size=batch_size
            ),
        )
        add(EndUser._meta.db_table, EndUser.objects.filter(**user_rows).delete()[0])
    except Exception as exc:
        save_counts()
        ErasureJob.objects.filter(pk=job.pk).update(
            state=ErasureJob.State.FAILED, finished_at=timezone.now(), error=type(exc).__name__
        )
        logger.exception("Erasure job %s failed", job.pk)
        raise
    with transaction.atomic():
        finished = timezone.now()
        ErasureJob.objects.filter(pk=job.pk).update(
            state=ErasureJob.State.DONE, counts=counts, finished_at=finished
        )
        # The audit row: who asked, when, and how many rows went (per table in `filters`).
        AccessRecord.objects.create(
            at=job.requested_at,
            environment_id=job.environment_id,
            actor_id=job.requested_by_user_id,
            actor_name=job.requested_by[: AccessRecord._meta.get_field("actor_name").max_length],
            action=AccessRecord.Action.ERASE,
            user_id=job.user_id,
            filters={"erasure": str(job.pk), "rows": counts},
            row_count=sum(counts.values()),
        )
    job.refresh_from_db()
    return job


def _notifications_batch_erase(
    *, job: ErasureJob, batch_size: int, add: Callable[[str, int], None]
) -> bool:
    """Erase the newest `batch_size` notifications of the job's user and everything hanging
    on them, in one short transaction. False when none were left."""
    environment_id = job.environment_id
    with transaction.atomic():
        # Locked, so a callback recording an event on one of them waits for this batch and
        # then finds no notification, instead of leaving an event behind it.
        batch = list(
            Notification.objects.filter(environment_id=environment_id, user_id=job.user_id)
            .order_by("-created_at", "-id")
            .select_for_update()
            .values_list("id", "created_at", "idempotency_key")[:batch_size]
        )
        if not batch:
            return False
        ids = [row[0] for row in batch]
        # The exact values, listed: the planner prunes to the partitions of those days.
        days = sorted({row[1] for row in batch})
        keys = sorted({row[2] for row in batch if row[2]})
        children = {
            "environment_id": environment_id,
            "notification_id__in": ids,
            "notification_created_at__in": days,
        }
        message_ids = list(
            Delivery.objects.filter(**children)
            .exclude(provider_message_id="")
            .values_list("provider_message_id", flat=True)
        )
        add(Event._meta.db_table, _raw_delete(Event.objects.filter(**children)))
        add(Delivery._meta.db_table, _raw_delete(Delivery.objects.filter(**children)))
        by_tracking = {"environment_id": environment_id, "notification_id__in": ids}
        # Stream attempts go with their message (ON DELETE CASCADE).
        add(
            StreamMessage._meta.db_table,
            _raw_delete(StreamMessage.objects.filter(**by_tracking)),
        )
        add(
            SandboxMessage._meta.db_table,
            _raw_delete(SandboxMessage.objects.filter(**by_tracking)),
        )
        add(
            InAppNotification._meta.db_table,
            _raw_delete(InAppNotification.objects.filter(**by_tracking)),
        )
        add(Outbox._meta.db_table, _raw_delete(Outbox.objects.filter(**by_tracking)))
        if keys:
            # Through the (environment, key) unique index; the body's hash goes with its key.
            add(
                SendIdempotencyKey._meta.db_table,
                _raw_delete(SendIdempotencyKey.objects.filter(key__in=keys, **by_tracking)),
            )
        if message_ids:
            # A provider's callback holds the address it went to; it names its delivery by
            # the provider's message id.
            add(
                InboxEntry._meta.db_table,
                _raw_delete(
                    InboxEntry.objects.filter(
                        Q(environment_id=environment_id) | Q(environment_id=None),
                        message_ids__overlap=message_ids,
                    )
                ),
            )
        add(
            Notification._meta.db_table,
            _raw_delete(
                Notification.objects.filter(
                    environment_id=environment_id, id__in=ids, created_at__in=days
                )
            ),
        )
    return True


def _raw_delete(queryset) -> int:
    """One DELETE statement for `queryset`: no rows fetched into Python first (the log tables'
    relations are plain columns; cascades, where any, are the database's)."""
    return queryset._raw_delete(queryset.db)


def erasures_resume(*, stale_seconds: int = ERASURE_STALE_SECONDS) -> int:
    """Enqueue again every job queued for more than `stale_seconds` (its task was lost) or
    running with no batch saved for that long (its worker died). Running a job twice is safe.
    Returns how many were enqueued."""
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    stale = list(
        ErasureJob.objects.filter(
            Q(state=ErasureJob.State.QUEUED, requested_at__lt=cutoff)
            | Q(state=ErasureJob.State.RUNNING, heartbeat_at__lt=cutoff)
        ).values_list("pk", flat=True)
    )
    for job_id in stale:
        erasure_enqueue(job_id)
    return len(stale)


def erasure_for_api(job: ErasureJob) -> dict:
    """The job as the API shows it."""
    return {
        "jobId": str(job.pk),
        "userId": job.user_id,
        "state": job.state,
        "requestedAt": job.requested_at.isoformat(),
        "requestedBy": job.requested_by,
        "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
        "rows": {table: job.counts.get(table, 0) for table in ERASED_TABLES},
        "rowsRemoved": job.rows_removed,
    }
