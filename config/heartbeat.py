"""Is background work happening? Heartbeats of the Celery workers and beat, read cheaply.

Beat writes its own heartbeat as it ticks (`Scheduler`, settings.CELERY_BEAT_SCHEDULER) and
schedules a heartbeat task on each queue (`celery`, `outbound`) every
HEARTBEAT_INTERVAL_SECONDS; the worker that runs it writes that queue's heartbeat. So a
queue's heartbeat stops when its worker is gone, when beat is gone, or when the queue is so far
behind that the heartbeat tasks expire before a worker reaches them; the queue's length (LLEN)
tells "behind" from "no worker". Each is one Redis key holding a Unix time.

`background_status()` is what the console's banner (config/templatetags/background.py) and
/readyz show: one round trip to Redis (MGET of the heartbeats and LLEN of the queues,
pipelined), cached in the process for a few seconds, so a page view costs at most that.
"""

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from celery import beat
from django.conf import settings

KEY_PREFIX = "nlc:heartbeat:"
BEAT = "beat"
QUEUES = ("celery", "outbound")
WATCHED_SINCE = f"{KEY_PREFIX}watched-since"
CACHE_SECONDS = 5.0

# What stops when each part is silent, as support staff would put it.
PAUSED = {
    "celery": "Sends, callbacks, alerts and insights are paused",
    "outbound": "Stream deliveries and alert notices are paused",
    BEAT: "Scheduled sends, sweeps, alert checks and insights are paused",
}
MISSING = {"celery": "no worker", "outbound": "no outbound worker", BEAT: "no beat"}


def heartbeat_key(part: str) -> str:
    return f"{KEY_PREFIX}{part}"


_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def _redis():
    import redis

    url = settings.REDIS_URL
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return _clients[url]


def heartbeat_write(part: str, *, at: float | None = None) -> None:
    _redis().set(heartbeat_key(part), repr(time.time() if at is None else at))


class Scheduler(beat.Scheduler):
    """Celery's in-memory beat scheduler (see settings.CELERY_BEAT_SCHEDULER) that writes beat's
    heartbeat as it ticks, at most every few seconds. Beat ticks at least as often as its most
    frequent entry is due (the heartbeat tasks: HEARTBEAT_INTERVAL_SECONDS)."""

    _written = 0.0

    def tick(self, *args, **kwargs):
        now = time.monotonic()
        if now - self._written >= 5:
            try:
                heartbeat_write(BEAT)
                self._written = now
            except Exception:  # Redis down: beat goes on, and the console will say so
                beat.logger.warning("beat heartbeat: Redis unreachable", exc_info=True)
        return super().tick(*args, **kwargs)


@dataclass(frozen=True)
class Pause:
    """One part of the background that is not working: what is paused, since when, why."""

    part: str  # "celery", "outbound", "beat" or "redis"
    paused: str  # "Sends, callbacks, alerts and insights are paused"
    since: datetime | None  # the last heartbeat (or when the console started watching)
    reason: str  # "no worker", "the queue is behind (1,204 tasks waiting)"


@dataclass(frozen=True)
class BackgroundStatus:
    checked: bool  # False when there is no broker to check (tests with eager tasks)
    pauses: tuple[Pause, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.pauses


def pauses_find(
    *,
    heartbeats: dict[str, float | None],
    queue_lengths: dict[str, int],
    watched_since: float,
    now: float,
    silent_after: float,
    backlog_limit: int,
) -> tuple[Pause, ...]:
    """The rule, on plain values: a part is paused when its last heartbeat (or, if it never
    wrote one, the moment the console started watching) is more than `silent_after` seconds
    old. A queue whose tasks wait beyond `backlog_limit` is behind even while its heartbeat is
    fresh (the heartbeat task may have jumped a slow queue's line only by luck)."""
    pauses = []
    for part in (BEAT, *QUEUES):
        last = heartbeats.get(part)
        length = queue_lengths.get(part, 0)
        reference = last if last is not None else watched_since
        silent = now - reference > silent_after
        if part in QUEUES and length > backlog_limit:
            reason = f"the queue is behind ({length:,} tasks waiting)"
        elif silent:
            reason = MISSING[part]
        else:
            continue
        since = datetime.fromtimestamp(reference, UTC) if silent else None
        # Work still flows, late, while the heartbeat is fresh: delayed, not paused.
        paused = PAUSED[part] if silent else PAUSED[part].replace("paused", "delayed")
        pauses.append(Pause(part=part, paused=paused, since=since, reason=reason))
    return tuple(pauses)


_cache: dict[str, tuple[float, BackgroundStatus]] = {}


def background_status(*, fresh: bool = False) -> BackgroundStatus:
    """The background's state, cached CACHE_SECONDS per process (fresh=True reads Redis)."""
    if not settings.REDIS_URL:
        return BackgroundStatus(checked=False)
    cached = _cache.get(settings.REDIS_URL)
    if cached and not fresh and cached[0] > time.monotonic():
        return cached[1]
    status = _read()
    _cache[settings.REDIS_URL] = (time.monotonic() + CACHE_SECONDS, status)
    return status


def _read() -> BackgroundStatus:
    import redis

    parts = (BEAT, *QUEUES)
    now = time.time()
    try:
        client = _redis()
        pipe = client.pipeline(transaction=False)
        pipe.mget([heartbeat_key(part) for part in parts] + [WATCHED_SINCE])
        for queue in QUEUES:
            pipe.llen(queue)
        values, *lengths = pipe.execute()
        watched_since = values[-1]
        if watched_since is None:
            # The first look of this install: silence is counted from now, not from 1970.
            client.set(WATCHED_SINCE, repr(now), nx=True)
            watched_since = now
    except redis.RedisError as exc:
        return BackgroundStatus(
            checked=True,
            pauses=(
                Pause(
                    part="redis",
                    paused="Sends, callbacks, alerts and insights are paused",
                    since=None,
                    reason=f"Redis unreachable ({exc.__class__.__name__})",
                ),
            ),
        )
    heartbeats = {
        part: float(value) if value is not None else None
        for part, value in zip(parts, values[:-1], strict=True)
    }
    return BackgroundStatus(
        checked=True,
        pauses=pauses_find(
            heartbeats=heartbeats,
            queue_lengths=dict(zip(QUEUES, lengths, strict=True)),
            watched_since=float(watched_since),
            now=now,
            silent_after=settings.HEARTBEAT_SILENT_SECONDS,
            backlog_limit=settings.QUEUE_BACKLOG_LIMIT,
        ),
    )
