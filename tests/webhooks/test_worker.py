"""Through real processes: gunicorn serving the receivers, a Celery worker with beat, and a
redis-server of the test's own (never the shared one). Callbacks posted concurrently give
exactly the expected events and no 5xx; with Redis stopped for 30 s mid-run, none is lost."""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection

from logs.models import Delivery, Event
from tests.factories import EnvironmentFactory
from tests.webhooks import processes
from tests.webhooks.providers import (
    T0,
    TWILIO_TOKEN,
    WEBHOOK_SECRET,
    Postmark,
    TwilioSms,
    TwilioVoice,
    sent_delivery,
)
from webhooks.models import InboxEntry, InboxState

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture
def stack(tmp_path):
    """Private Redis, gunicorn and a worker on the test database; yields (base_url, redis)."""
    redis_port, web_port = processes.free_port(), processes.free_port()
    base_url = f"http://127.0.0.1:{web_port}"
    env = processes.project_env(
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        public_base_url=base_url,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        ANYMAIL_WEBHOOK_SECRET=WEBHOOK_SECRET,
        WEBHOOK_SWEEP_INTERVAL="1",
    )
    started = []
    redis = {"process": processes.redis_start(redis_port, tmp_path), "port": redis_port}
    try:
        started.append(processes.gunicorn_start(web_port, env, tmp_path))
        started.append(processes.worker_start(env, tmp_path))
        yield base_url, redis, tmp_path
    finally:
        for process in reversed(started):
            processes.stop(process)
        processes.stop(redis["process"])
        connection.close()


def _plan(environment, base_url):
    """(provider, message id, step) for every callback, and the events each delivery ends
    with: 200 SMS x 2, 100 calls x 3, 100 emails x 2 plus a duplicate of each = 1,000."""
    sms, voice, postmark = TwilioSms(base_url), TwilioVoice(base_url), Postmark(base_url)
    callbacks, expected = [], {}
    for provider, count, steps, events in (
        (sms, 200, ["sent", "delivered"], [("sent", ""), ("delivered", "")]),
        (voice, 100, ["ringing", "in-progress", "completed"],
         [("sent", ""), ("sent", ""), ("delivered", "completed")]),
        (postmark, 100, ["delivered", "opened", "delivered"],
         [("delivered", ""), ("engagement", "opened")]),
    ):  # fmt: skip
        for _ in range(count):
            message_id = provider.new_message_id()
            notification = sent_delivery(
                environment=environment,
                channel=provider.channel,
                message_id=message_id,
                provider=provider.provider,
            )
            expected[notification.id] = sorted(events)
            callbacks += [(provider, message_id, step) for step in steps]
    return callbacks, expected


def _post(client: httpx.Client, base_url: str, callback) -> int:
    provider, message_id, step = callback
    # A provider's retry is the same request byte for byte: the time is the message's.
    request = provider.request(message_id, step, at=T0)
    response = client.post(
        base_url + request["path"],
        content=request["data"],
        headers=request["headers"] | {"Content-Type": request["content_type"]},
    )
    return response.status_code


def _recorded(expected) -> dict:
    rows = Event.objects.filter(notification_id__in=list(expected)).exclude(
        source__in=["pipeline", "api"]
    )
    found = {notification_id: [] for notification_id in expected}
    for notification_id, kind, sub_kind in rows.values_list("notification_id", "kind", "sub_kind"):
        found[notification_id].append((kind, sub_kind))
    return {key: sorted(value) for key, value in found.items()}


def _settled(total: int) -> bool:
    return InboxEntry.objects.filter(state=InboxState.PROCESSED).count() >= total


def test_a_thousand_concurrent_callbacks_give_exactly_the_expected_events(stack):
    base_url, _, tmp = stack
    callbacks, expected = _plan(EnvironmentFactory(), base_url)
    assert len(callbacks) == 1000
    random.Random(8).shuffle(callbacks)

    with httpx.Client(timeout=30, trust_env=False) as client, ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda c: _post(client, base_url, c), callbacks))

    assert {status for status in statuses} == {200}, sorted(set(statuses))
    assert processes.wait_for(lambda: _settled(1000), timeout=240), (
        InboxEntry.objects.values_list("state", "error")[:5],
        (tmp / "worker.log").read_text()[-2000:],
    )
    assert _recorded(expected) == expected
    assert InboxEntry.objects.count() == 1000
    assert not Delivery.objects.filter(notification_id__in=list(expected), state="sent").exists()


def test_no_callback_is_lost_while_redis_is_down_for_30_seconds(stack):
    base_url, redis, tmp = stack
    environment = EnvironmentFactory()
    sms = TwilioSms(base_url)
    message_ids = [sms.new_message_id() for _ in range(120)]
    notifications = [
        sent_delivery(environment=environment, channel="sms", message_id=message_id)
        for message_id in message_ids
    ]
    statuses, outage = [], threading.Event()

    def post_steadily(client):
        # 120 callbacks over ~45 s: before, during and after the outage.
        for message_id in message_ids:
            started = time.monotonic()
            statuses.append(
                (outage.is_set(), _post(client, base_url, (sms, message_id, "delivered")))
            )
            time.sleep(max(0.0, 0.375 - (time.monotonic() - started)))

    with httpx.Client(timeout=30, trust_env=False) as client:
        poster = threading.Thread(target=post_steadily, args=(client,))
        poster.start()
        # The outage must meet a worker that is consuming (with tasks in flight), not one
        # still starting: wait until callbacks are being processed, then stop Redis.
        worker_log = tmp / "worker.log"
        assert processes.wait_for(lambda: _settled(5), timeout=60), worker_log.read_text()[-3000:]
        processes.stop(redis["process"])
        outage.set()
        time.sleep(30)
        redis["process"] = processes.redis_start(redis["port"], tmp)
        outage.clear()
        poster.join(timeout=120)

    during = [status for down, status in statuses if down]
    assert during, "no callback was posted while Redis was down"
    assert {status for _, status in statuses} == {200}, statuses
    assert len(statuses) == 120
    assert processes.wait_for(lambda: _settled(120), timeout=240), (
        list(InboxEntry.objects.values_list("state", "next_attempt_at", "error")[:5]),
        (tmp / "worker.log").read_text()[-3000:],
    )
    delivered = Delivery.objects.filter(
        notification_id__in=[n.id for n in notifications], state="delivered"
    )
    assert delivered.count() == 120
