import os
import re

import pytest


def _redis_database_of_worker(url: str, worker: str) -> str:
    """REDIS_URL for one pytest-xdist worker ("gw0", "gw1", ...): the same server, the
    database number plus the worker's index (modulo Redis's 16), so no two test processes
    share a broker queue, a cache or a flushdb."""
    index = int(worker.removeprefix("gw"))
    match = re.fullmatch(r"(redis://[^/]+)(?:/(\d+))?", url)
    if match is None:
        raise pytest.UsageError(f"REDIS_URL {url!r} is not redis://host:port/N.")
    return f"{match[1]}/{(int(match[2] or 0) + index) % 16}"


def pytest_configure(config):
    """Under pytest-xdist (make test runs the suite in several processes) each process gets a
    PostgreSQL test database of its own from pytest-django, and here a Redis database of its
    own: for this process's settings (cache, Celery broker) and for the processes its tests
    start (they inherit REDIS_URL)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not os.environ.get("REDIS_URL"):
        return
    from django.conf import settings
    from django.test.utils import override_settings

    from config.celery import app as celery_app

    url = _redis_database_of_worker(os.environ["REDIS_URL"], worker)
    os.environ["REDIS_URL"] = url
    caches = {name: {**cache} for name, cache in settings.CACHES.items()}
    for cache in caches.values():
        if cache.get("LOCATION") == settings.REDIS_URL:
            cache["LOCATION"] = url
    # For the whole session; setting_changed makes Django rebuild its cache connections.
    override_settings(REDIS_URL=url, CELERY_BROKER_URL=url, CACHES=caches).enable()
    celery_app.conf.broker_url = url


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
    from notifications.services.sends import dispatch_batcher
    from webhooks.inbox import inbox_batcher

    def pools_forgotten():
        # Celery's connection and producer pools are made for the URL of their first use: an
        # earlier test's broker (a stalled one, say) must not be the one this test publishes to.
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    previous = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = redis_url
    pools_forgotten()
    client = redis.Redis.from_url(redis_url)
    client.delete(BROKER_QUEUE)
    yield client
    dispatch_batcher.flush()
    inbox_batcher.flush()
    client.delete(BROKER_QUEUE)
    celery_app.conf.task_always_eager, celery_app.conf.broker_url = previous
    pools_forgotten()


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
