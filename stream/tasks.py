from celery import shared_task
from django.conf import settings

from stream.services.delivery import message_deliver, subscription_drain
from stream.services.upkeep import messages_purge, messages_sweep


@shared_task(acks_late=True, reject_on_worker_lost=True)
def stream_subscription_drain_task(subscription_id: int) -> int:
    """A subscription's due messages, many at once, in order per notification, for at most
    STREAM_DRAIN_SECONDS (safe to run twice: messages are claimed with a lease)."""
    return subscription_drain(subscription_id=subscription_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def stream_message_deliver_task(message_id: int) -> str:
    """One message, if it is due. Drains deliver now; this stays for the tasks an older
    version queued before an upgrade."""
    return message_deliver(message_id=message_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def stream_sweep_task() -> int:
    """Beat: enqueue a drain for subscriptions with messages due a retry, or whose drain the
    broker never got."""
    return messages_sweep()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def stream_messages_purge_task() -> int:
    """Beat, nightly: finished stream messages go with the logs they came from."""
    return messages_purge(older_than_days=settings.LOG_RETENTION_DAYS)
