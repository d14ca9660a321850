"""Counters every process shares, in Redis (REDIS_URL): one round trip each, never a row in
PostgreSQL that every request would queue on. Without REDIS_URL (embedded development) they
live in this process's memory.

`redis_client()` is the connection the rate limiter (config/throttling.py) counts through too:
short timeouts, so a Redis that stalls costs a request half a second, not a worker."""

import threading
from collections import Counter
from functools import cache

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

KEY_PREFIX = "nlc:counters"
REDIS_TIMEOUT_SECONDS = 0.5


@cache
def _redis_for(url: str) -> redis.Redis:
    # One connection pool per process and URL (redis-py's pool reconnects after a fork).
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def redis_client() -> redis.Redis | None:
    """The shared Redis, or None when the install runs without one."""
    return _redis_for(settings.REDIS_URL) if settings.REDIS_URL else None


@receiver(setting_changed)
def _forget_clients(*, setting, **kwargs):
    if setting == "REDIS_URL":
        _redis_for.cache_clear()


_local_lock = threading.Lock()
_local: dict[str, Counter] = {}


def counter_add(name: str, field: str, amount: int = 1) -> None:
    """Add to the counter `field` of the family `name` (HINCRBY: atomic, one round trip).
    Raises redis.RedisError when Redis does not answer."""
    client = redis_client()
    if client is None:
        with _local_lock:
            _local.setdefault(name, Counter())[field] += amount
        return
    client.hincrby(f"{KEY_PREFIX}:{name}", field, amount)


def counters_read(name: str) -> dict[str, int]:
    """Every counter of the family `name`, by field."""
    client = redis_client()
    if client is None:
        with _local_lock:
            return dict(_local.get(name, {}))
    return {
        field.decode(): int(value)
        for field, value in client.hgetall(f"{KEY_PREFIX}:{name}").items()
    }


def counters_clear(name: str) -> None:
    client = redis_client()
    if client is None:
        with _local_lock:
            _local.pop(name, None)
        return
    client.delete(f"{KEY_PREFIX}:{name}")
