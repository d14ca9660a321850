"""Enqueueing many small Celery tasks cheaply: ids handed over by request threads leave as one
task per batch, sent by a background thread of the process.

A Celery `apply_async` costs about as much CPU as the rest of a send request (building,
routing and serialising the message, then the round trip to Redis). What it enqueues here is
only a hint that work is waiting: the work itself is already durable in PostgreSQL (the
outbox), and a sweeper enqueues whatever no worker took. So a request hands its id to a
`TaskBatcher` and returns; the batcher's thread waits up to `max_wait` seconds for more and
sends them as one task (a list of ids). A process that dies with ids not sent yet loses
nothing but latency: the sweeper sends them.

With Celery in eager mode (no broker: development without Redis, some tests) the task runs at
once, in the caller's thread, one id at a time, as a plain `apply_async` would.
"""

import atexit
import base64
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Hashable

import redis
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)


class TaskBatcher:
    def __init__(
        self,
        task: Callable[[], object],
        *,
        max_batch: int = 50,
        max_wait: float = 0.01,
        what: str = "items",
    ):
        # `task` returns the Celery task (imported late: apps are not ready at import time);
        # it takes one argument, a list of ids (as strings).
        self._task = task
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.what = what
        self._pid = None
        atexit.register(self.flush)

    def _start(self) -> None:
        # Per process: after a fork (gunicorn, Celery prefork) the parent's thread is gone.
        self._pid = os.getpid()
        self._items: list[str] = []
        self._ready = threading.Condition()
        threading.Thread(target=self._run, name="task-batcher", daemon=True).start()

    def add(self, item: Hashable) -> None:
        task = self._task()
        if task.app.conf.task_always_eager:
            self._send(task, [str(item)])
            return
        if self._pid != os.getpid():
            self._start()
        with self._ready:
            self._items.append(str(item))
            if len(self._items) == 1 or len(self._items) >= self.max_batch:
                self._ready.notify()

    def flush(self) -> None:
        """Send what is waiting now (at exit; tests)."""
        if self._pid != os.getpid():
            return
        with self._ready:
            items, self._items = self._items, []
        if items:
            self._send(self._task(), items)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._items:
                    self._ready.wait()
                # Gather for a moment: a burst leaves as one message.
                if len(self._items) < self.max_batch:
                    self._ready.wait(self.max_wait)
                items = self._items[: self.max_batch]
                del self._items[: self.max_batch]
            self._send(self._task(), items)

    def _send(self, task, items: list[str]) -> None:
        try:
            queue = None if task.app.conf.task_always_eager else _redis_queue(task.app)
            if queue is None:
                # retry=False: with the broker down, fail at once; the sweeper sends them.
                task.apply_async(args=[items], retry=False)
            else:
                client, name = queue
                client.lpush(name, _message(task.name, [items], routing_key=name))
        except (BrokerError, OSError, redis.RedisError) as exc:
            logger.warning(
                "Broker unreachable (%s); the sweeper will enqueue %d %s",
                type(exc).__name__,
                len(items),
                self.what,
            )


# --- publishing without kombu ------------------------------------------------------------------
#
# kombu's publish path (routing, serialisers, producer pool, declarations) costs several times
# the Redis round trip itself. With a plain Redis broker (no key prefix, no custom routes) a
# task message is one LPUSH of a JSON document in Celery's message protocol version 2
# (https://docs.celeryq.dev/en/stable/internals/protocol.html), which the worker consumes like
# any other; anything else goes through apply_async.

_queues: dict[str, tuple[redis.Redis, str] | None] = {}


def _redis_queue(app) -> tuple[redis.Redis, str] | None:
    url = app.conf.broker_url or ""
    if url not in _queues:
        plain = (
            url.startswith(("redis://", "rediss://"))
            and not (app.conf.broker_transport_options or {}).get("global_keyprefix")
            and not app.conf.task_routes
            and not app.conf.task_queues
        )
        _queues[url] = (
            (redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5),
             app.conf.task_default_queue)
            if plain
            else None
        )  # fmt: skip
    return _queues[url]


_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_ORIGIN = f"{socket.gethostname()}"


def _message(task_name: str, args: list, *, routing_key: str) -> str:
    task_id = str(uuid.uuid4())
    body = json.dumps([args, {}, _EMBED])
    return json.dumps(
        {
            "body": base64.b64encode(body.encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": task_name,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": repr(args)[:1024],
                "kwargsrepr": "{}",
                "origin": f"{os.getpid()}@{_ORIGIN}",
                "ignore_result": True,
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": routing_key},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )
