from celery import shared_task
from django.conf import settings

from insights.services import rollups_fold, rollups_purge


@shared_task(acks_late=True, reject_on_worker_lost=True)
def rollups_fold_task() -> int:
    """Beat runs this every INSIGHTS_FOLD_INTERVAL_SECONDS: pending deltas into the rollups."""
    return rollups_fold().deltas


@shared_task(acks_late=True, reject_on_worker_lost=True)
def rollups_purge_task() -> int:
    """Beat runs this nightly: rollups older than INSIGHTS_ROLLUP_RETENTION_DAYS go."""
    return rollups_purge(retention_days=settings.INSIGHTS_ROLLUP_RETENTION_DAYS)
