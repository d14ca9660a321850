"""With a real Celery worker (and beat running the stream sweeper) on the test database and
this engineer's Redis: the subscriber is down for a while, recording goes on, and once it is
back every event arrives exactly once, signed, in order per notification."""

import time
import uuid

import pytest
import redis

from logs.services import event_record
from stream.models import MessageState, StreamAttempt, StreamMessage
from stream.services.subscriptions import subscription_create
from tests.factories import EnvironmentFactory
from tests.logs.factories import NotificationFactory
from tests.notifications.processes import Processes, child_database_url, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

KINDS = ("sending", "sent", "delivered", "engagement")


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def test_receiver_down_for_a_while_then_every_event_arrives_in_order(
    processes, redis_url, receiver
):
    redis.Redis.from_url(redis_url).flushdb()  # this engineer's own Redis database
    processes.worker(
        {
            "DATABASE_URL": child_database_url(),
            "REDIS_URL": redis_url,
            "STREAM_RETRY_BACKOFF_SECONDS": "0.5",
            "STREAM_RETRY_MAX_BACKOFF_SECONDS": "2",
            "STREAM_SWEEP_INTERVAL_SECONDS": "1",
            "STREAM_SWEEP_AFTER_SECONDS": "3",
            "STREAM_TIMEOUT_SECONDS": "5",
        }
    )
    environment = EnvironmentFactory()
    _, receiver.secret = subscription_create(
        environment=environment, url=receiver.url, kinds=["sending", "sent", "delivered",
        "engagement"],
    )  # fmt: skip
    notifications = [NotificationFactory(environment=environment) for _ in range(10)]
    receiver.up = False

    recorded = {n.id: [] for n in notifications}
    started = time.monotonic()
    for kind in KINDS:
        for notification in notifications:
            event = event_record(
                notification_id=notification.id,
                notification_created_at=notification.created_at,
                kind=kind,
                channel="email",
                sub_kind="opened" if kind == "engagement" else "",
                source="pipeline",
            ).event
            recorded[notification.id].append(event.id)
    recording_seconds = time.monotonic() - started

    # The worker keeps trying the first event of each notification, and nothing else.
    wait_for(
        lambda: StreamAttempt.objects.filter(status_code=503).count() >= 30,
        timeout=120,
        what="the worker retrying the down receiver",
        details=processes.logs,
    )
    assert not StreamMessage.objects.filter(state=MessageState.DELIVERED).exists()
    tried = set(StreamAttempt.objects.values_list("message__event_id", flat=True))
    assert tried == {ids[0] for ids in recorded.values()}

    receiver.up = True
    wait_for(
        lambda: not StreamMessage.objects.filter(state=MessageState.PENDING).exists(),
        timeout=180,
        what="every message delivered",
        details=processes.logs,
    )

    assert receiver.rejected == 0
    assert len(receiver.received) == 40
    assert len({item["id"] for item in receiver.received}) == 40  # each once
    arrived = {n.id: [] for n in notifications}
    for body in receiver.bodies():
        arrived[uuid.UUID(body["data"]["trackingId"])].append(body["data"]["eventId"])
    assert arrived == recorded
    assert StreamMessage.objects.filter(state=MessageState.DELIVERED).count() == 40
    # Recording never waited on the subscriber (40 events, none of them sent meanwhile).
    assert recording_seconds < 30
