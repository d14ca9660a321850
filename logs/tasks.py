from celery import shared_task
from django.conf import settings

from logs.partitions import partitions_ensure
from logs.services import retention_purge


@shared_task(acks_late=True, reject_on_worker_lost=True)
def partitions_ensure_task() -> list[str]:
    """Beat runs this hourly so tomorrow's partitions always exist well before midnight UTC."""
    return partitions_ensure(days_ahead=settings.LOG_PARTITIONS_AHEAD)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def retention_purge_task() -> list[str]:
    """Beat runs this nightly: whole days past LOG_RETENTION_DAYS are dropped."""
    expired = retention_purge(retention_days=settings.LOG_RETENTION_DAYS)
    return [partition.name for partition in expired]
