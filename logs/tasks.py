import logging

from celery import shared_task
from django.conf import settings

from logs.partitions import partitions_ensure
from logs.retention import retention_followers_purge, retention_purge, retention_purge_accounts

logger = logging.getLogger(__name__)

# A purge that found a day busy (its locks were taken by writers or long readers) tries
# again this much later, a few times, then leaves it for the next night.
PURGE_RETRY_SECONDS = 15 * 60
PURGE_RETRIES = 4


@shared_task(acks_late=True, reject_on_worker_lost=True)
def partitions_ensure_task() -> list[str]:
    """Beat runs this hourly so tomorrow's partitions always exist well before midnight UTC.
    A day whose locks stay busy is skipped (with a warning) and created by the next run."""
    return partitions_ensure(days_ahead=settings.LOG_PARTITIONS_AHEAD)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=PURGE_RETRIES)
def retention_purge_task(self) -> list[str]:
    """Beat runs this nightly: whole days past LOG_RETENTION_DAYS are dropped, then each
    account with a shorter retention loses its older rows in batches, and the callbacks'
    message id lookup its rows of dropped days (once a night: not again on the retries,
    which are for busy partitions)."""
    purge = retention_purge(retention_days=settings.LOG_RETENTION_DAYS)
    if not self.request.retries:
        retention_purge_accounts()
        # What other apps keep per day of the log (webhooks: the callbacks' message id ->
        # environment rows of the days dropped, on Citus), registered in their apps.py.
        retention_followers_purge(retention_days=settings.LOG_RETENTION_DAYS)
    if purge.busy:
        names = ", ".join(partition.name for partition in purge.busy)
        if self.request.retries < self.max_retries:
            logger.warning(
                "Retention purge: %d partition(s) busy (%s); retrying in %d s",
                len(purge.busy), names, PURGE_RETRY_SECONDS,
            )  # fmt: skip
            raise self.retry(countdown=PURGE_RETRY_SECONDS)
        logger.warning(
            "Retention purge: %d partition(s) still busy (%s); left for the next night",
            len(purge.busy), names,
        )  # fmt: skip
    return [partition.name for partition in purge.partitions]


@shared_task(acks_late=True, reject_on_worker_lost=True)
def content_retention_task() -> int:
    """Beat runs this nightly: environments with a content retention shorter than their
    log's have the content of older notifications cleared, in batches (logs/content_retention.py).
    A night with more than CONTENT_RUN_SECONDS of work stops between two batches and queues
    this task again, which carries on from the watermarks. Safe to run twice. Returns how
    many notifications it cleared."""
    import time

    from logs.content_retention import CONTENT_RUN_SECONDS, content_retention_run

    runs = content_retention_run(until=time.monotonic() + CONTENT_RUN_SECONDS)
    if not all(run.finished for run in runs):
        logger.info(
            "Content retention: more to clear after %d s; queued again", CONTENT_RUN_SECONDS
        )
        content_retention_task.delay()
    return sum(run.cleared for run in runs)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def index_compact_task() -> list[str]:
    """Beat runs this nightly: each finished day's log partitions (LOG_INDEX_COMPACT_AFTER_DAYS
    old, not dropped by the next purge) have their indexes rebuilt online, once
    (logs/index_compaction.py). A partition whose locks stayed busy is left for the next
    night. Returns the partitions compacted."""
    from logs.index_compaction import index_compact

    if settings.LOG_INDEX_COMPACT_AFTER_DAYS < 1:
        return []
    result = index_compact()
    if result.busy:
        logger.warning(
            "Index compaction: %d partition(s) busy (%s); left for the next night",
            len(result.busy), ", ".join(result.busy),
        )  # fmt: skip
    return result.compacted


@shared_task(acks_late=True, reject_on_worker_lost=True)
def erasure_run_task(job_id: str) -> str:
    """Run one erasure job (logs/erasure.py). Safe to run twice: the sweeper re-enqueues a
    job whose worker died."""
    from logs.erasure import erasure_run

    return erasure_run(job_id=job_id).state


@shared_task(acks_late=True, reject_on_worker_lost=True)
def erasures_resume_task() -> int:
    """Beat runs this every few minutes: erasure jobs left queued or running are run again."""
    from logs.erasure import erasures_resume

    return erasures_resume()
