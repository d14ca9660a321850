"""Per-process caches of the few rows every send and every callback reads: an environment by
its client id, an API key by its prefix, a notification type by its key, an environment's
stream subscriptions.

Each of those is a query per request otherwise, and the send path is measured against a view
that makes one. A hit is served for at most HOT_CACHE_SECONDS (default 5; 0 turns the caches
off). A change saved through the ORM clears the cache in the process that made it at once
(post_save / post_delete receivers, and the services that change rows with update()); other
processes see it when their entry expires. So a revoked key, a rotated secret or an
environment being deleted may still be accepted by another server process for up to
HOT_CACHE_SECONDS. Only rows found are cached: a miss (an unknown client id, a type created a
moment ago) always reads the database.
"""

import threading
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from django.conf import settings
from django.core.signals import setting_changed

T = TypeVar("T")

# An entry count past which a cache starts over (a bound on memory, not an LRU: the working
# set is a deployment's environments and types, far below it).
MAX_ENTRIES = 10_000

_caches: list["HotCache"] = []


class HotCache:
    def __init__(self, name: str):
        self.name = name
        self._entries: dict[Hashable, tuple[float, object]] = {}
        self._lock = threading.Lock()
        _caches.append(self)

    def get(self, key: Hashable, load: Callable[[], T | None]) -> T | None:
        """The cached value of `key`, else `load()` (cached when it is not None)."""
        seconds = settings.HOT_CACHE_SECONDS
        if seconds <= 0:
            return load()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        if value is not None:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (now + seconds, value)
        return value

    def clear(self, *args, **kwargs) -> None:
        """Forget every entry (also usable as a signal receiver)."""
        with self._lock:
            self._entries.clear()


def hot_caches_clear(*args, **kwargs) -> None:
    for cache in _caches:
        cache.clear()


def _on_setting_changed(*, setting, **kwargs) -> None:
    if setting == "HOT_CACHE_SECONDS":
        hot_caches_clear()


setting_changed.connect(_on_setting_changed, dispatch_uid="config.hotcache.setting_changed")
