"""Celery tasks of the alerts app: thin shells over alerts.evaluation and alerts.notices."""

from celery import shared_task

from alerts import evaluation, notices, services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def alert_rules_evaluate_task() -> dict:
    """Beat, every minute: evaluate every enabled rule, then resend notices left pending."""
    outcomes = dict(evaluation.alert_rules_evaluate())
    outcomes["notices_swept"] = notices.alert_notices_sweep()
    return outcomes


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def alert_notice_send_task(self, notice_id: int) -> None:
    """Send one notice; retried with exponential backoff until the service gives up."""
    if not notices.alert_notice_send(notice_id=notice_id):
        raise self.retry(countdown=notices.retry_countdown(attempt=self.request.retries))


@shared_task(acks_late=True, reject_on_worker_lost=True)
def minute_counts_purge_task() -> int:
    """Beat, hourly: drop counter rows older than the longest window."""
    return services.minute_counts_purge()
