"""Dispatch is enqueued in batches (config/batching.py): a burst of sends leaves a server
process as a few Celery messages on the real Redis broker, each naming its notifications,
every notification exactly once. (With the broker down they are left to the outbox sweeper:
tests/notifications/test_worker.py stops Redis mid-burst.)"""

import base64
import json
import time
import uuid

import pytest
import redis

from config.celery import app as celery_app
from notifications.services import dispatch_batcher, dispatch_enqueue

QUEUE = "celery"


def _messages(client: redis.Redis, skip: int) -> list[dict]:
    raw = client.lrange(QUEUE, 0, -1)
    # LPUSH: the newest first; the ones already there before the test are the oldest.
    return [json.loads(item) for item in raw[: len(raw) - skip]]


@pytest.fixture
def broker(redis_url):
    previous = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = redis_url
    client = redis.Redis.from_url(redis_url)
    client.delete(QUEUE)
    yield client
    dispatch_batcher.flush()
    client.delete(QUEUE)
    celery_app.conf.task_always_eager, celery_app.conf.broker_url = previous


def test_a_burst_of_sends_is_enqueued_as_a_few_messages_naming_each_once(broker):
    ids = [uuid.uuid4() for _ in range(25)]
    for notification_id in ids:
        dispatch_enqueue(notification_id)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        named = [
            notification_id
            for message in _messages(broker, 0)
            for notification_id in json.loads(base64.b64decode(message["body"]))[0][0]
        ]
        if len(named) >= len(ids):
            break
        time.sleep(0.02)
    messages = _messages(broker, 0)
    assert {m["headers"]["task"] for m in messages} == {
        "notifications.tasks.notification_dispatch_batch_task"
    }
    assert sorted(named) == sorted(str(i) for i in ids)
    # Ten a message at most, and a burst fills them.
    assert len(messages) <= 4, len(messages)
