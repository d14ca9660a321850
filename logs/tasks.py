from celery import shared_task
from django.conf import settings

from logs.partitions import partitions_ensure


@shared_task(acks_late=True, reject_on_worker_lost=True)
def partitions_ensure_task() -> list[str]:
    """Beat runs this hourly so tomorrow's partitions always exist well before midnight UTC."""
    return partitions_ensure(days_ahead=settings.LOG_PARTITIONS_AHEAD)
