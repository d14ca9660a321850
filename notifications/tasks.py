"""Celery tasks: thin shells over notifications.dispatch and services. They take ids, are
acknowledged after they run (acks_late) and re-queued if their worker dies."""

import uuid

from celery import shared_task
from django.conf import settings

from notifications.dispatch import notification_dispatch, outbox_sweep
from notifications.services import idempotency_keys_purge


@shared_task(acks_late=True, reject_on_worker_lost=True)
def notification_dispatch_task(notification_id: str) -> str:
    return notification_dispatch(notification_id=uuid.UUID(notification_id))


@shared_task(acks_late=True, reject_on_worker_lost=True)
def outbox_sweep_task() -> int:
    """Beat runs this every OUTBOX_SWEEP_INTERVAL_SECONDS."""
    return len(outbox_sweep())


@shared_task(acks_late=True, reject_on_worker_lost=True)
def idempotency_keys_purge_task() -> int:
    """Beat runs this nightly: keys live as long as the logs (LOG_RETENTION_DAYS)."""
    return idempotency_keys_purge(retention_days=settings.LOG_RETENTION_DAYS)
