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


@pytest.fixture(autouse=True)
def _hot_caches_cleared():
    """Each test starts with empty per-process caches (config/hotcache.py): rows a previous
    test cached were rolled back with it."""
    from config.hotcache import hot_caches_clear

    hot_caches_clear()
    yield
