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
import logging
import os
import threading
from collections.abc import Callable, Hashable

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
            # retry=False: with the broker down, fail at once; the sweeper will send them.
            task.apply_async(args=[items], retry=False)
        except (BrokerError, OSError) as exc:
            logger.warning(
                "Broker unreachable (%s); the sweeper will enqueue %d %s",
                type(exc).__name__,
                len(items),
                self.what,
            )
