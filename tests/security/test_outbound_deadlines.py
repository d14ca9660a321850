"""A tenant's endpoint that answers a byte at a time, or answers gigabytes, must not hold a
worker: each call ends at its deadline having read a few KB at most, and the product's own
work (provider callbacks) never waits behind those calls, because they run on a queue and
worker of their own."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from alerts.evaluation import alert_rules_evaluate
from alerts.models import AlertNotice
from logs.models import Event
from stream.models import StreamAttempt, StreamMessage
from stream.services.subscriptions import subscription_create
from tests.alerts.helpers import record, rule
from tests.factories import EnvironmentFactory
from tests.logs.factories import NotificationFactory
from tests.notifications.factories import NotificationTypeFactory
from tests.security.hostile import Flooder, Trickler, sending_recorded
from tests.webhooks import processes
from tests.webhooks.providers import TWILIO_TOKEN, TwilioSms, sent_delivery

pytestmark = [pytest.mark.django_db(transaction=True)]

# The trickler's whole answer takes about 7 minutes at a byte every 0.5 s.
TRICKLE_FOR_MINUTES = 7


@override_settings(STREAM_TIMEOUT_SECONDS=1.5)
def test_a_trickling_subscriber_is_cut_off_at_the_deadline(celery_eager):
    environment = EnvironmentFactory()
    with Trickler(interval=0.5) as trickler:
        subscription_create(environment=environment, url=trickler.url, kinds=["sending"])
        sending_recorded(NotificationFactory(environment=environment))
    attempt = StreamAttempt.objects.get()
    assert (attempt.status_code, attempt.error) == (None, "timed out")
    # Its 1.5 s deadline, not the minutes the answer would take (a generous bound: the
    # property is "ends at the deadline", not a speed).
    assert attempt.duration_ms < 30_000, attempt.duration_ms
    assert trickler.connections == 1


@override_settings(STREAM_TIMEOUT_SECONDS=30)
def test_a_flooding_subscriber_costs_a_few_kilobytes(celery_eager):
    """A 200 MB answer: the call reads the status and at most a few KB, then hangs up."""
    environment = EnvironmentFactory()
    with Flooder(size=200 * 1024 * 1024) as flooder:
        subscription_create(environment=environment, url=flooder.url, kinds=["sending"])
        sending_recorded(NotificationFactory(environment=environment))
        attempt = StreamAttempt.objects.get()
        assert (attempt.status_code, attempt.error) == (200, "")
        # What the kernel's buffers took before the hang-up, not the body.
        assert flooder.sent < 16 * 1024 * 1024, flooder.sent


@override_settings(ALERTS_WEBHOOK_TIMEOUT_SECONDS=1.5, ALERTS_NOTICE_RETRY_BACKOFF_SECONDS=3600)
def test_a_trickling_alert_webhook_is_cut_off_at_the_deadline(celery_eager):
    environment = EnvironmentFactory()
    NotificationTypeFactory(environment=environment, key="order_tracking")
    with Trickler(interval=0.5) as trickler:
        rule(environment, min_notifications=1, email_recipients="", webhook_url=trickler.url)
        record(environment, ("failed", "email", "bounce"))
        started = time.monotonic()
        alert_rules_evaluate()
        took = time.monotonic() - started
    notice = AlertNotice.objects.get()
    assert notice.last_error == "webhook unreachable: timed out"
    assert took < 60, took  # minutes of trickle, cut at 1.5 s


# --- with the real worker processes, as Procfile.dev runs them --------------------------------


@pytest.fixture
def stack(tmp_path, redis_url):
    """gunicorn serving the receivers and two Celery workers as production runs them: one
    for the product's own queue, one for the tenants' outbound calls, on this test's Redis."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    web_port = processes.free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    env = processes.project_env(
        redis_url=redis_url,
        public_base_url=base_url,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        STREAM_TIMEOUT_SECONDS="2",
        STREAM_RETRY_BACKOFF_SECONDS="0.5",
        STREAM_RETRY_MAX_BACKOFF_SECONDS="1",
        STREAM_SWEEP_AFTER_SECONDS="1",
        STREAM_SWEEP_INTERVAL_SECONDS="1",
    )
    started = []
    try:
        started.append(processes.gunicorn_start(web_port, env, tmp_path))
        started.append(processes.worker_start(env, tmp_path, queues="celery", name="worker"))
        started.append(
            processes.worker_start(env, tmp_path, queues="outbound", name="outbound", beat=False)
        )
        yield base_url, tmp_path
    finally:
        for process in reversed(started):
            processes.stop(process)
        connection.close()


def test_callbacks_are_recorded_on_time_while_subscribers_trickle_and_flood(stack):
    base_url, tmp = stack
    environment = EnvironmentFactory()
    with Trickler(interval=0.5) as trickler, Flooder(size=50 * 1024 * 1024) as flooder:
        subscription_create(environment=environment, url=trickler.url, kinds=["sending"])
        subscription_create(environment=environment, url=flooder.url, kinds=["sending"])
        for _ in range(6):  # 12 stream messages, more than the outbound worker's processes
            sending_recorded(NotificationFactory(environment=environment))

        # Meanwhile a provider reports 20 messages delivered (another tenant's: its sends
        # make no stream messages of their own, so the six below are the flooder's only ones).
        sms = TwilioSms(base_url)
        message_ids = [sms.new_message_id() for _ in range(20)]
        other = EnvironmentFactory()
        notifications = [
            sent_delivery(environment=other, channel="sms", message_id=message_id)
            for message_id in message_ids
        ]
        time.sleep(1)  # the outbound worker is busy with the trickler by now
        statuses = _post_delivered(base_url, sms, message_ids)
        assert set(statuses) == {200}, statuses
        posted = time.monotonic()
        delivered = Event.objects.filter(
            notification_id__in=[n.id for n in notifications], kind="delivered"
        )
        recorded = processes.wait_for(lambda: delivered.count() == 20, timeout=60)
        waited = time.monotonic() - posted
        assert recorded, (delivered.count(), _logs(tmp))
        # Freshness is measured in bench/; here the property is that they are not stuck
        # behind the trickler, whose answers take minutes each.
        assert waited < TRICKLE_FOR_MINUTES * 60 / 4, waited

        # The outbound worker moves on: each trickling call ends at its deadline.
        timed_out = StreamAttempt.objects.filter(
            message__subscription__url=trickler.url, error="timed out"
        )
        assert processes.wait_for(lambda: timed_out.count() >= 4, timeout=90), _logs(tmp)
        flooded = StreamMessage.objects.filter(subscription__url=flooder.url)
        delivered = flooded.filter(state="delivered")
        assert processes.wait_for(lambda: delivered.count() == 6, timeout=90), (
            _stream_state(flooder.url),
            _logs(tmp),
        )
        assert flooded.count() == 6
        assert flooder.sent < 6 * 16 * 1024 * 1024, flooder.sent


def _post_delivered(base_url, sms, message_ids) -> list[int]:
    def post(message_id):
        request = sms.request(message_id, "delivered", at=_now())
        with httpx.Client(timeout=30, trust_env=False) as client:
            return client.post(
                base_url + request["path"],
                content=request["data"],
                headers=request["headers"] | {"Content-Type": request["content_type"]},
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, message_ids))


def _now():
    return timezone.now()


def _stream_state(url) -> list:
    return [
        (m.id, m.state, m.attempt_count, m.next_attempt_at, m.leased_until,
         list(m.attempts.values_list("status_code", "error", "duration_ms")))
        for m in StreamMessage.objects.filter(subscription__url=url).order_by("id")
    ]  # fmt: skip


def _logs(tmp) -> str:
    return "\n".join(path.read_text(errors="replace")[-2000:] for path in tmp.glob("*.log"))
