"""Per-credential rate limits, counted in Redis with one atomic step per request.

A fixed window: the key names the credential and the window's number (`int(now / seconds)`),
and one round trip runs a two-line Lua script: `INCR key`, and `EXPIRE key` when that made it
1. Redis runs a script atomically, so however many processes count at once, exactly `count`
requests of a window are let through, and no key outlives its window. (EVALSHA costs this
process about half the CPU of a MULTI/INCR/EXPIRE/EXEC pipeline: ~45 µs a request.)
DRF's SimpleRateThrottle keeps a list of timestamps and writes it back after reading it
(read-modify-write): concurrent requests read the same list and all pass. A fixed window lets
a burst of up to twice the rate straddle a window's edge; that is the price of one round trip.

Without REDIS_URL (embedded development) the counter is this process's memory. When Redis does
not answer, requests are served (a warning is logged): a limiter must not take the API down.

The DRF throttle classes here answer a refusal the API's way: 429, `Retry-After` (the seconds
left in the window) and `{"message": ...}` naming the limit and its setting.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from django.http import JsonResponse
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from config.counters import redis_client

if TYPE_CHECKING:  # config sits below accounts: the credentials' type is only named here
    from accounts.authentication import Credentials

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
            "hour": 3600, "d": 86400, "day": 86400}  # fmt: skip
RATE_PATTERN = re.compile(r"(\d+)/(" + "|".join(_PERIODS) + ")")
KEY_PREFIX = "nlc:throttle"
# KEYS[1]: the window's counter; ARGV[1]: its lifetime in seconds. Returns the new count.
_COUNT_IN_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@cache
def _count_script(client: redis.Redis):
    # redis-py sends EVALSHA, and the script itself again if Redis lost it (a restart).
    return client.register_script(_COUNT_IN_WINDOW)


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    def __str__(self) -> str:
        unit = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}[self.seconds]
        return f"{self.count} per {unit}"


@cache
def rate_parse(text: str) -> Rate:
    """'600/minute' -> Rate(600, 60). Settings are checked at start-up (config/settings/api.py)
    with the same pattern, so a bad rate never reaches a request."""
    match = RATE_PATTERN.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a rate: write e.g. 600/minute (count/second, minute, hour or day)."
        )
    return Rate(int(match[1]), _PERIODS[match[2]])


class _LocalWindows:
    """The counter without Redis: this process's memory (embedded development only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def hit(self, key: str) -> int:
        with self._lock:
            if len(self._counts) > 100_000:  # old windows are never read again
                self._counts.clear()
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


_local = _LocalWindows()


def window_hit(*, scope: str, ident: str, rate: Rate, now: float | None = None) -> float | None:
    """Count one request of `ident` in `scope`'s current window. None when it is allowed;
    else the seconds until the window ends (what Retry-After says)."""
    now = time.time() if now is None else now
    window = int(now // rate.seconds)
    key = f"{KEY_PREFIX}:{scope}:{ident}:{window}"
    client = redis_client()
    if client is not None:
        try:
            count = _count_script(client)(keys=[key], args=[rate.seconds + 1])
        except redis.RedisError as exc:
            logger.warning("%s rate limit skipped: Redis did not answer (%s)", scope, exc)
            return None
    else:
        count = _local.hit(key)
    if count <= rate.count:
        return None
    return max((window + 1) * rate.seconds - now, 1.0)


def credential_ident(credentials: Credentials) -> str:
    """Whose allowance a request spends: an API key's, an environment's client secret's, or
    (the user-hash form) one end user's of an environment."""
    if credentials.user_id is not None:
        # Hashed: a user id may be long and hold any character.
        user = hashlib.sha256(credentials.user_id.encode()).hexdigest()[:32]
        return f"user:{credentials.environment.pk}:{user}"
    if credentials.api_key is not None:
        return f"key:{credentials.api_key.pk}"
    return f"env:{credentials.environment.pk}"


def throttled_message(*, what: str, rate: Rate, setting: str, wait: float) -> str:
    return (
        f"Request was throttled: each credential may make {rate} requests to {what} "
        f"({setting}). Retry after {math.ceil(wait)} seconds."
    )


class CounterRateThrottle(BaseThrottle):
    """A DRF throttle over window_hit. Subclasses name `scope`, `setting` (the rate's setting
    name) and `what` (the API, as the refusal names it). A refusal raises DRF's Throttled,
    which config.api answers as {"message": ...} with Retry-After."""

    scope: str = ""
    setting: str = ""
    what: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not (cls.scope and cls.setting and cls.what):
            raise TypeError(f"{cls.__name__} must set scope, setting and what.")

    def refusal(self, credentials: Credentials) -> tuple[float, str] | None:
        """(seconds to wait, message) when this request is over the limit, else None."""
        rate = rate_parse(getattr(settings, self.setting))
        wait = window_hit(scope=self.scope, ident=credential_ident(credentials), rate=rate)
        if wait is None:
            return None
        return wait, throttled_message(what=self.what, rate=rate, setting=self.setting, wait=wait)

    def refusal_response(self, credentials: Credentials) -> JsonResponse | None:
        """The 429 for a view answered without DRF (the plain send path), else None."""
        refused = self.refusal(credentials)
        if refused is None:
            return None
        wait, message = refused
        response = JsonResponse({"message": message}, status=429)
        response["Retry-After"] = str(math.ceil(wait))
        return response

    def allow_request(self, request, view) -> bool:
        credentials = request.auth
        if credentials is None:
            # Unauthenticated requests are refused before this; every authentication class
            # here (accounts.authentication) gives a Credentials as request.auth.
            return True
        refused = self.refusal(credentials)
        if refused is not None:
            wait, message = refused
            exc = Throttled(detail=message)
            exc.wait = math.ceil(wait)  # Retry-After, without DRF's second sentence
            raise exc
        return True


class SendRateThrottle(CounterRateThrottle):
    """The send API (/{clientId}/sender, /api/v1/notifications, schedules, retract, sub
    notifications, preferences) for a server credential: SEND_API_THROTTLE_RATE each."""

    scope = "send"
    setting = "SEND_API_THROTTLE_RATE"
    what = "the send API"


class UserRateThrottle(CounterRateThrottle):
    """The endpoints an end user's app calls with a user hash (identify, preferences, the
    in-app feed): USER_API_THROTTLE_RATE per end user; a server credential calling them
    spends its send allowance instead."""

    scope = "user"
    setting = "USER_API_THROTTLE_RATE"
    what = "the user endpoints"

    def refusal(self, credentials: Credentials):
        if credentials.user_id is None:
            return SendRateThrottle().refusal(credentials)
        return super().refusal(credentials)
