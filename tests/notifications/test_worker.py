"""End to end with real processes: Celery workers (solo pool, embedded beat running the
outbox sweeper) against Redis, on the test database. A worker SIGKILLed mid-dispatch loses
nothing and duplicates at the provider are bounded by the kills that landed inside a
provider call; a Redis outage during a burst of sends loses nothing either."""

import signal
import time
import uuid
from collections import Counter

import httpx
import pytest
import redis

from logs.models import Delivery, Notification
from notifications.models import Outbox, SandboxMessage
from notifications.services.sends import notification_send
from notifications.wire import send_request_parse
from tests.notifications.conftest import SECRET, basic
from tests.notifications.fakes import free_port
from tests.notifications.helpers import email_and_sms_body as body
from tests.notifications.helpers import rows_and_folded
from tests.notifications.processes import Processes, child_database_url, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

DONE = {"sent", "delivered", "failed", "ignored"}


@pytest.fixture(autouse=True)
def eager_celery():
    """Overrides the in-process default: these tests enqueue to a real broker."""
    yield


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": child_database_url(),
        "REDIS_URL": redis_url,
        "SEND_PROVIDER_EMAIL": "sandbox",
        "SEND_PROVIDER_SMS": "sandbox",
        "SEND_PROVIDER_CALL": "sandbox",
        "OUTBOX_SWEEP_INTERVAL_SECONDS": "1",
        "OUTBOX_SWEEP_AFTER_SECONDS": "3",
        "OUTBOX_LEASE_SECONDS": "5",
        "SEND_RETRY_BACKOFF_SECONDS": "0",
        # The sandbox's callbacks go to a closed port unless a test serves them.
        "PUBLIC_BASE_URL": "http://127.0.0.1:9",
        **extra,
    }


def all_dispatched(ids) -> bool:
    if Outbox.objects.filter(notification_id__in=ids).exists():
        return False
    states = Delivery.objects.filter(notification_id__in=ids).values_list("state", flat=True)
    return len(states) == 2 * len(ids) and set(states) <= DONE


def test_sigkilled_workers_lose_nothing_and_duplicates_are_bounded(
    processes, redis_url, environment, order_tracking
):
    # Celery's queue and unacknowledged messages left by earlier runs (only Celery's keys:
    # the Redis database may be shared with a running `make run`).
    redis.Redis.from_url(redis_url).delete("celery", "unacked", "unacked_index")
    ids = [
        notification_send(
            environment=environment, send_request=send_request_parse(body(i)), raw_request=body(i)
        ).notification_id
        for i in range(30)
    ]
    # A kill between a recording of Sendings and that of their outcomes interrupts up to
    # DISPATCH_CALLS_PER_TRANSACTION channels (their calls are made together).
    per_transaction = 4
    env = worker_env(
        redis_url,
        SANDBOX_SEND_DELAY_SECONDS="0.3",
        DISPATCH_CALLS_PER_TRANSACTION=str(per_transaction),
    )
    kills = 0
    # Fixed, not random: three different points of a dispatch (each takes 0.3 s), every run.
    for pause in (0.1, 0.3, 0.5):
        worker = processes.worker(env)
        before = SandboxMessage.objects.count()
        wait_for(
            lambda b=before: SandboxMessage.objects.count() > b,
            timeout=150,
            what="the worker to send something",
        )
        time.sleep(pause)  # land somewhere in the middle of a dispatch
        processes.kill(worker)
        kills += 1
    processes.worker(env)
    wait_for(
        lambda: all_dispatched(ids),
        timeout=180,
        what="every notification dispatched",
        details=processes.logs,
    )

    per_channel = Counter(SandboxMessage.objects.values_list("notification_id", "channel"))
    assert set(per_channel) == {(i, c) for i in ids for c in ("email", "sms")}  # none lost
    duplicates = sum(count - 1 for count in per_channel.values())
    # Rows and the first attempts folded into their deliveries (logs.timeline).
    sendings = Counter(
        (notification.id, event.channel)
        for notification in Notification.objects.filter(id__in=ids)
        for event in rows_and_folded(notification, kind="sending")
    )
    # A channel with a second attempt is one whose first was interrupted by a kill.
    interrupted = sum(1 for count in sendings.values() if count > 1)
    print(f"kills={kills} interrupted={interrupted} duplicates={duplicates}")
    assert duplicates <= interrupted <= kills * per_transaction, (duplicates, interrupted, kills)
    assert set(
        Delivery.objects.filter(notification_id__in=ids).values_list("state", flat=True)
    ) == {"sent"}


def test_redis_down_for_30_seconds_during_a_burst_loses_nothing(
    processes, environment, order_tracking
):
    port = free_port()
    broker = processes.redis(port)  # our own Redis: the shared one stays up for others
    env = worker_env(f"redis://127.0.0.1:{port}/0")
    web = processes.gunicorn(env)
    processes.worker(env)
    headers = {"Authorization": basic(environment.client_id, SECRET)}
    answers = []

    def burst(start: int, count: int) -> None:
        for index in range(start, start + count):
            response = httpx.post(
                f"{web}/{environment.client_id}/sender",
                json=body(index),
                headers=headers,
                timeout=30,
            )
            answers.append((response.status_code, response.json().get("trackingId")))

    burst(0, 5)
    processes.kill(broker, signal.SIGTERM)
    down_since = time.monotonic()
    burst(5, 10)
    time.sleep(max(0.0, 30 - (time.monotonic() - down_since)))
    processes.redis(port)  # back, and empty: whatever was queued before is gone
    burst(15, 5)

    assert [status for status, _ in answers] == [200] * 20, processes.logs()
    ids = [uuid.UUID(tracking_id) for _, tracking_id in answers]
    assert Notification.objects.filter(id__in=ids).count() == 20
    wait_for(
        lambda: all_dispatched(ids),
        timeout=240,
        what="every notification dispatched",
        details=processes.logs,
    )
    assert set(
        Delivery.objects.filter(notification_id__in=ids).values_list("state", flat=True)
    ) == {"sent"}
