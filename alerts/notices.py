"""Sending an alert's notices: email through Django's email API, and a webhook whose JSON
Slack's incoming webhooks accept. Called by a Celery task, outside any transaction; the
task retries with backoff until ALERTS_NOTICE_MAX_ATTEMPTS, then the notice is Failed.

Delivery is at least once: a worker that dies after the provider accepted a notice but
before its row says so sends it again on redelivery."""

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from alerts.links import alert_search_url
from alerts.models import AlertNotice
from alerts.vocabulary import NoticeChannel, NoticeState, Transition
from config import outbound
from config.enqueue import task

logger = logging.getLogger(__name__)


class NoticeFailed(Exception):
    """A notice could not be handed over; the message says why without the URL (a Slack
    webhook URL is itself a secret) or the body."""


def notice_text(notice: AlertNotice) -> tuple[str, str]:
    """(subject, body) for people: what fired or resolved, where, and the link."""
    alert, rule = notice.alert, notice.alert.rule
    environment = alert.environment
    fired = notice.transition == Transition.FIRED
    state = "FIRING" if fired else "RESOLVED"
    subject = f"[{state}] {rule.name} ({environment.account.name} / {environment.name})"
    until = alert.fired_at if fired else alert.resolved_at
    link = alert_search_url(alert=alert, until=until)
    body = f"{subject}\n\n{alert.summary}\n\nNotifications that caused it: {link}\n"
    return subject, body


def slack_body(notice: AlertNotice) -> dict:
    subject, body = notice_text(notice)
    _, _, rest = body.partition("\n\n")
    return {
        "text": body.strip(),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": rest.strip()[:3000]}},
        ],
    }


def _send_email(notice: AlertNotice) -> None:
    subject, body = notice_text(notice)
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.ALERTS_FROM_EMAIL,
        to=notice.alert.rule.recipients(),
    )
    try:
        message.send()
    except OSError as exc:  # smtplib.SMTPException is an OSError too
        raise NoticeFailed(f"email not accepted: {type(exc).__name__}") from None


def _send_webhook(notice: AlertNotice) -> None:
    result = outbound.post(
        notice.alert.rule.webhook_url,
        content=json.dumps(slack_body(notice)).encode(),
        headers={"content-type": "application/json"},
        deadline=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS,
    )
    if result.status_code is None:
        raise NoticeFailed(f"webhook unreachable: {result.error}")
    if not result.succeeded:
        raise NoticeFailed(f"webhook answered {result.status_code}")


_SENDERS = {NoticeChannel.EMAIL: _send_email, NoticeChannel.WEBHOOK: _send_webhook}


# How long a claimed notice is left to its sender before the sweeper may take it over.
def _lease() -> timedelta:
    return timedelta(seconds=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS + 60)


def _claim(notice_id: int) -> bool:
    """Take a pending, due notice for one attempt (one short UPDATE, no lock held while
    sending). False when it is sent, given up, or someone else holds it."""
    now = timezone.now()
    return bool(
        AlertNotice.objects.filter(
            id=notice_id, state=NoticeState.PENDING, next_attempt_at__lte=now
        ).update(next_attempt_at=now + _lease())
    )


def alert_notice_send(*, notice_id: int) -> bool:
    """Send one notice. True when it is done with (sent, failed for good, gone, or another
    sender holds it); False when it should be tried again later."""
    if not _claim(notice_id):
        return True
    notice = AlertNotice.objects.select_related("alert__rule", "alert__environment__account").get(
        id=notice_id
    )
    try:
        _SENDERS[notice.channel](notice)
    except NoticeFailed as exc:
        return _attempt_failed(notice_id=notice_id, error=str(exc))
    AlertNotice.objects.filter(id=notice_id).update(
        state=NoticeState.SENT, attempts=notice.attempts + 1, sent_at=timezone.now(), last_error=""
    )
    return True


def _attempt_failed(*, notice_id: int, error: str) -> bool:
    with transaction.atomic():
        notice = AlertNotice.objects.select_for_update().get(id=notice_id)
        notice.attempts += 1
        notice.last_error = error
        notice.next_attempt_at = timezone.now() + timedelta(
            seconds=retry_countdown(attempt=notice.attempts - 1)
        )
        if notice.attempts >= settings.ALERTS_NOTICE_MAX_ATTEMPTS:
            notice.state = NoticeState.FAILED
        notice.save(update_fields=["attempts", "last_error", "state", "next_attempt_at"])
    logger.warning("alert notice %s attempt %s failed: %s", notice_id, notice.attempts, error)
    return notice.state == NoticeState.FAILED


def retry_countdown(*, attempt: int) -> float:
    return settings.ALERTS_NOTICE_RETRY_BACKOFF_SECONDS * 2**attempt


def alert_notice_enqueue(*, notice_id: int) -> None:
    """Hand a notice to a worker. Never raises: a broker that is down (or, with tasks run
    in-process, a webhook that keeps failing) must not fail the evaluation that made it;
    the sweeper sends what is left pending."""
    send_task = task("alerts.tasks.alert_notice_send_task")
    try:
        send_task.delay(notice_id)
    except Exception as exc:  # kombu's, redis's, socket's, celery.exceptions.Retry
        logger.warning("alert notice %s not handed over now (%s)", notice_id, type(exc).__name__)


def alert_notices_sweep(*, now: datetime | None = None) -> int:
    """Enqueue pending notices that are due and held by nobody (their task was lost, or the
    broker was down when they were made). Runs after each evaluation pass."""
    due = AlertNotice.objects.filter(
        state=NoticeState.PENDING, next_attempt_at__lte=now or timezone.now()
    ).values_list("id", flat=True)[:500]
    ids = list(due)
    for notice_id in ids:
        alert_notice_enqueue(notice_id=notice_id)
    return len(ids)
