from celery import shared_task
from django.conf import settings

from audit.services import access_records_purge


@shared_task(acks_late=True, reject_on_worker_lost=True)
def access_records_purge_task() -> int:
    """Beat runs this nightly: access records older than AUDIT_RETENTION_DAYS go, in batches."""
    return access_records_purge(retention_days=settings.AUDIT_RETENTION_DAYS)
