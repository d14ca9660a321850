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

The other apps' tables are erased by the erasers those apps register in their
AppConfig.ready (`erasure_eraser_register`: notifications, stream, webhooks), and the audit
row is written by the access audit's receiver of `logs.signals.erasure_done`: the log sits
below those apps and does not import them.

What is kept, and why: the insights rollups (counts per hour, type and channel: no user id,
no address) keep their counts; the access audit (audit.AccessRecord) keeps the rows saying
who looked the user up, and gains one saying who erased them and how many rows went: the
audit exists to answer exactly that; the job row names the user for the same reason.

Running a job twice is safe: every step deletes what is still there, and the counts are
kept on the job batch by batch, so a resumed run adds to them.
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Environment
from config.enqueue import task
from logs.models import Delivery, ErasureJob, Event, Notification
from logs.signals import erasure_done

logger = logging.getLogger(__name__)

# Notifications per batch: each batch deletes them and their deliveries, events and copies
# in one transaction of a few milliseconds.
ERASURE_BATCH = 500
# A job still queued or running this long after it was asked for is run again by the sweeper
# (its task was lost, or its worker died).
ERASURE_STALE_SECONDS = 5 * 60


@dataclass(frozen=True)
class ErasedBatch:
    """A batch of one user's notifications being erased, as the erasers of the copies other
    apps keep of them see it: in the batch's transaction, the notifications locked."""

    environment_id: int
    notification_ids: list[uuid.UUID]
    # Their idempotency keys (non-blank) and the provider message ids of their deliveries.
    idempotency_keys: list[str]
    message_ids: list[str]

    def naming(self, model) -> QuerySet:
        """The rows of `model` (environment_id, notification_id) that name these notifications."""
        return model.objects.filter(
            environment_id=self.environment_id, notification_id__in=self.notification_ids
        )


@dataclass(frozen=True)
class Eraser:
    """How an app erases its copies of a user's data (one table): `batch(ErasedBatch)`, the
    rows naming a batch's notifications, in the batch's transaction; `user(environment_id=,
    user_id=, batch_size=)`, the rows keyed by the user id alone, after the last batch. Each
    returns the rows it deleted."""

    table: str
    batch: Callable[[ErasedBatch], int] | None = None
    user: Callable[..., int] | None = None


# Filled by the apps' AppConfig.ready (erasure_eraser_register), in INSTALLED_APPS order: the
# log cannot import the apps that keep copies of it (they sit above it).
_erasers: dict[str, Eraser] = {}


def erasure_eraser_register(
    *,
    table: str,
    batch: Callable[[ErasedBatch], int] | None = None,
    user: Callable[..., int] | None = None,
) -> None:
    """Register an app's erasure of its table (see Eraser); the same table again replaces it."""
    _erasers[table] = Eraser(table=table, batch=batch, user=user)


def erased_tables() -> tuple[str, ...]:
    """Every table an erasure touches, in the order of the job's counts."""
    return (
        Event._meta.db_table,
        Delivery._meta.db_table,
        *_erasers,
        Notification._meta.db_table,
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
    counts = {table: job.counts.get(table, 0) for table in erased_tables()}

    def add(table: str, removed: int) -> None:
        counts[table] += removed

    def save_counts() -> None:
        ErasureJob.objects.filter(pk=job.pk).update(counts=counts, heartbeat_at=timezone.now())

    try:
        while _notifications_batch_erase(job=job, batch_size=batch_size, add=add):
            save_counts()
        for eraser in _erasers.values():
            if eraser.user is not None:
                add(
                    eraser.table,
                    eraser.user(
                        environment_id=job.environment_id,
                        user_id=job.user_id,
                        batch_size=batch_size,
                    ),
                )
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
        # The access audit's row (who asked, when, how many rows went) commits with it.
        erasure_done.send(sender=ErasureJob, job=job, counts=counts)
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
        add(Event._meta.db_table, raw_delete(Event.objects.filter(**children)))
        add(Delivery._meta.db_table, raw_delete(Delivery.objects.filter(**children)))
        erased = ErasedBatch(environment_id, ids, keys, message_ids)
        for eraser in _erasers.values():
            if eraser.batch is not None:
                add(eraser.table, eraser.batch(erased))
        add(
            Notification._meta.db_table,
            raw_delete(
                Notification.objects.filter(
                    environment_id=environment_id, id__in=ids, created_at__in=days
                )
            ),
        )
    return True


def raw_delete(queryset) -> int:
    """One DELETE statement for `queryset`: no rows fetched into Python first (the log tables'
    relations are plain columns; cascades, where any, are the database's). For erasers too."""
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
        "rows": {table: job.counts.get(table, 0) for table in erased_tables()},
        "rowsRemoved": job.rows_removed,
    }
