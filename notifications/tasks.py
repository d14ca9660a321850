"""Celery tasks: thin shells over notifications.dispatch, outbox and services. They take ids,
are acknowledged after they run (acks_late) and re-queued if their worker dies."""

import uuid

from celery import shared_task
from django.conf import settings

from notifications.dispatch import notification_dispatch, notifications_dispatch
from notifications.outbox import outbox_sweep
from notifications.services.upkeep import send_tables_purge


@shared_task(acks_late=True, reject_on_worker_lost=True)
def notification_dispatch_task(notification_id: str) -> str:
    return notification_dispatch(notification_id=uuid.UUID(notification_id))


@shared_task(acks_late=True, reject_on_worker_lost=True)
def notification_dispatch_batch_task(notification_ids: list[str]) -> list[str]:
    """What services.dispatch_enqueue sends: the notifications accepted by one server process
    within a few milliseconds (config/batching.py), dispatched together (one claim, one
    recording of each step for all: notifications.dispatch.notifications_dispatch). Each
    dispatch is idempotent, so a batch redelivered after its worker died skips what was done."""
    return notifications_dispatch(notification_ids=[uuid.UUID(i) for i in notification_ids])


@shared_task(acks_late=True, reject_on_worker_lost=True)
def outbox_sweep_task() -> int:
    """Beat runs this every OUTBOX_SWEEP_INTERVAL_SECONDS."""
    return len(outbox_sweep())


@shared_task(acks_late=True, reject_on_worker_lost=True)
def send_tables_purge_task() -> dict[str, int]:
    """Beat runs this nightly: idempotency keys, in-app items and the sandbox's record live
    as long as the logs they point at (LOG_RETENTION_DAYS)."""
    return send_tables_purge(retention_days=settings.LOG_RETENTION_DAYS)
