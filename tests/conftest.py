import os

import pytest


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis, or a failure that says how to start one (never a silent skip)."""
    import redis

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {url} ({exc}). Start it with\n"
            "  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''\n"
            "or set REDIS_URL to a running Redis.",
            pytrace=False,
        )
    return url


BROKER_QUEUE = "celery"


@pytest.fixture
def celery_broker(redis_url):
    """Celery publishing to the real Redis broker with nothing consuming it: a test reads the
    messages that were queued (queued_messages). The task batchers are flushed after it."""
    import redis

    from config.celery import app as celery_app
    from notifications.services import dispatch_batcher
    from webhooks.inbox import inbox_batcher

    previous = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = redis_url
    client = redis.Redis.from_url(redis_url)
    client.delete(BROKER_QUEUE)
    yield client
    dispatch_batcher.flush()
    inbox_batcher.flush()
    client.delete(BROKER_QUEUE)
    celery_app.conf.task_always_eager, celery_app.conf.broker_url = previous


def queued_messages(client, *, expected: int, timeout: float = 5.0) -> list[tuple[str, list]]:
    """(task name, first argument) of each message on the broker's queue, oldest first,
    waiting up to `timeout` seconds for `expected` items to be named in all (a batcher's
    background thread sends them)."""
    import base64
    import json
    import time

    deadline = time.monotonic() + timeout
    while True:
        messages = [json.loads(raw) for raw in reversed(client.lrange(BROKER_QUEUE, 0, -1))]
        found = [
            (m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0][0]) for m in messages
        ]
        named = sum(len(arg) if isinstance(arg, list) else 1 for _, arg in found)
        if named >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def _hot_caches_cleared():
    """Each test starts with empty per-process caches (config/hotcache.py): rows a previous
    test cached were rolled back with it."""
    from config.hotcache import hot_caches_clear

    hot_caches_clear()
    yield
