"""How many exports one credential (an API key, a console user) may stream at once.

An export streams for as long as its client reads: without a cap, one credential opening ten
exports holds ten web threads and ten database connections' worth of reading. Each running
export holds a slot: a member of a Redis sorted set per holder, scored by when it expires.
Taking a slot is one Lua script (drop expired members, count, add), so concurrent requests
in any number of processes never let more than EXPORT_MAX_CONCURRENT through. The stream
renews its slot as it advances and gives it back when it ends (or the client goes away); a
process killed mid-export leaves a slot that expires EXPORT_SLOT_TTL_SECONDS after its last
renewal, so a crash never locks a credential out.

Without REDIS_URL (embedded development) the slots are this process's memory. When Redis does
not answer, the export is served (a warning is logged), as the rate limiter does.
"""

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from functools import cache

import redis
from django.conf import settings

from config.counters import redis_client

logger = logging.getLogger(__name__)

KEY_PREFIX = "nlc:exports"
# Seconds a refused client is told to wait: exports end at their client's pace, so this is a
# suggestion to try again soon, not a promise.
RETRY_AFTER_SECONDS = 10
# KEYS[1]: the holder's set; ARGV: now, expiry, limit, slot id, the key's lifetime.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class ExportsBusy(Exception):
    """The holder already runs EXPORT_MAX_CONCURRENT exports."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.retry_after = RETRY_AFTER_SECONDS


@cache
def _take_script(client: redis.Redis):
    return client.register_script(_TAKE)


class _LocalSlots:
    """The slots without Redis: this process's memory (embedded development only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, dict[str, float]] = {}

    def take(self, key: str, slot: str, now: float, expiry: float, limit: int) -> bool:
        with self._lock:
            held = {s: e for s, e in self._slots.get(key, {}).items() if e > now}
            if len(held) >= limit:
                self._slots[key] = held
                return False
            held[slot] = expiry
            self._slots[key] = held
            return True

    def renew(self, key: str, slot: str, expiry: float) -> None:
        with self._lock:
            if slot in self._slots.get(key, {}):
                self._slots[key][slot] = expiry

    def release(self, key: str, slot: str) -> None:
        with self._lock:
            self._slots.get(key, {}).pop(slot, None)


_local = _LocalSlots()


def _key(holder: str) -> str:
    return f"{KEY_PREFIX}:{holder}"


def export_slot_take(*, holder: str, who: str) -> str:
    """A slot for one export of `holder`, or ExportsBusy naming `who` (as the refusal says
    it: "This API key", "You") and the limit."""
    limit = settings.EXPORT_MAX_CONCURRENT
    slot = uuid.uuid4().hex
    now = time.time()
    expiry = now + settings.EXPORT_SLOT_TTL_SECONDS
    client = redis_client()
    if client is None:
        taken = _local.take(_key(holder), slot, now, expiry, limit)
    else:
        try:
            taken = _take_script(client)(
                keys=[_key(holder)],
                args=[now, expiry, limit, slot, settings.EXPORT_SLOT_TTL_SECONDS + 1],
            )
        except redis.RedisError as exc:
            logger.warning("Export cap skipped: Redis did not answer (%s)", exc)
            return slot
    if not taken:
        raise ExportsBusy(
            f"{who} already {'run' if who == 'You' else 'runs'} {limit} export"
            f"{'' if limit == 1 else 's'} at once (EXPORT_MAX_CONCURRENT): wait for one to "
            f"finish, then retry after {RETRY_AFTER_SECONDS} seconds."
        )
    return slot


def _renew(holder: str, slot: str) -> None:
    expiry = time.time() + settings.EXPORT_SLOT_TTL_SECONDS
    client = redis_client()
    if client is None:
        _local.renew(_key(holder), slot, expiry)
        return
    try:
        client.zadd(_key(holder), {slot: expiry}, xx=True)
    except redis.RedisError as exc:
        logger.warning("Export slot not renewed: Redis did not answer (%s)", exc)


def export_slot_release(*, holder: str, slot: str) -> None:
    client = redis_client()
    if client is None:
        _local.release(_key(holder), slot)
        return
    try:
        client.zrem(_key(holder), slot)
    except redis.RedisError as exc:
        logger.warning("Export slot not released (it expires): Redis did not answer (%s)", exc)


def export_slot_stream(pieces: Iterable, *, holder: str, slot: str) -> Iterator:
    """`pieces` as they come, renewing the slot as the export advances (at most every few
    seconds) and releasing it when the stream ends, fails, or is closed by the server
    because its client went away (a generator's close runs the finally)."""
    renew_every = settings.EXPORT_SLOT_TTL_SECONDS / 4
    renewed = time.monotonic()
    try:
        for piece in pieces:
            if time.monotonic() - renewed > renew_every:
                _renew(holder, slot)
                renewed = time.monotonic()
            yield piece
    finally:
        export_slot_release(holder=holder, slot=slot)
