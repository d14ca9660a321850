from celery import shared_task
from django.conf import settings

from stream.services import message_deliver, messages_purge, messages_sweep


@shared_task(acks_late=True, reject_on_worker_lost=True)
def stream_message_deliver_task(message_id: int) -> str:
    """One signed POST of a stream message, if it is due (safe to run twice)."""
    return message_deliver(message_id=message_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def stream_sweep_task() -> int:
    """Beat: enqueue stream messages due a retry, or that the broker never got."""
    return messages_sweep()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def stream_messages_purge_task() -> int:
    """Beat, nightly: finished stream messages go with the logs they came from."""
    return messages_purge(older_than_days=settings.LOG_RETENTION_DAYS)
