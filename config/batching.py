"""Enqueueing many small Celery tasks cheaply: ids handed over by request threads leave as one
task per batch, sent by a background thread of the process.

A Celery `apply_async` costs about as much CPU as the rest of a send request (building,
routing and serialising the message, then the round trip to Redis). What it enqueues here is
only a hint that work is waiting: the work itself is already durable in PostgreSQL (the
outbox), and a sweeper enqueues whatever no worker took. So a request hands its id to a
`TaskBatcher` and returns; the batcher's thread waits up to `max_wait` seconds for more and
sends them as one task (a list of ids). A process that dies with ids not sent yet loses
nothing but latency: the sweeper sends them.

Each batch is one ordinary `apply_async` (Celery's message, routing and kombu's producer
pool): the CPU saved is in sending one message per batch, not in how it is built. (An
earlier LPUSH of a hand-built message was only used with a broker of no declared queues or
routes; since this install declares its queues, `celery` and `outbound`, it never ran.)

With Celery in eager mode (no broker: development without Redis, some tests) the task runs at
once, in the caller's thread, one id at a time, as a plain `apply_async` would.

The queue is bounded (`max_queued` ids). When Redis stops answering, the thread waits on it
(up to its socket timeout per message) while requests keep handing ids over; past the bound
`add` takes no more and returns False. That loses nothing and holds no request: an id is
only handed over once its row is committed (an inbox row, an outbox row) with the time the
sweeper takes it (`next_attempt_at`, `next_sweep_at`), so a refused id is processed by the
sweeper, as one lost with its process or refused by a broker that is down would be. It is
never a reason to answer a provider or a sender with an error: what they sent is in
PostgreSQL. The refusals are logged once per episode (not per id: a flood would flood the
log), with how many the episode refused when it ends.
"""

import atexit
import logging
import os
import threading
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
        max_queued: int = 10_000,
        what: str = "items",
    ):
        # `task` returns the Celery task (imported late: apps are not ready at import time);
        # it takes one argument, a list of ids (as strings).
        self._task = task
        self.max_batch = max_batch
        self.max_wait = max_wait
        # Ids waiting in this process at most (a few hundred kilobytes): a minute of a busy
        # process's ids, far more than the thread ever holds while Redis answers.
        self.max_queued = max_queued
        self.what = what
        self._pid = None
        # True while the thread sends a batch (a stalled broker holds it for its socket
        # timeout): what a caller waits on to know the thread is free again.
        self.sending = False
        atexit.register(self.flush)

    def _start(self) -> None:
        # Per process: after a fork (gunicorn, Celery prefork) the parent's thread is gone.
        self._pid = os.getpid()
        self._items: list[str] = []
        self._refused = 0  # ids refused since the queue last had room
        self._ready = threading.Condition()
        threading.Thread(target=self._run, name="task-batcher", daemon=True).start()

    @property
    def queued(self) -> int:
        """Ids waiting in this process for the thread."""
        return len(self._items) if self._pid == os.getpid() else 0

    def add(self, item: Hashable) -> bool:
        """Hand over the id of a committed row. False when the queue is full (Redis not
        answering): the row's sweeper enqueues it instead; the caller has nothing to do."""
        task = self._task()
        if task.app.conf.task_always_eager:
            self._send(task, [str(item)])
            return True
        if self._pid != os.getpid():
            self._start()
        with self._ready:
            if len(self._items) >= self.max_queued:
                self._refused += 1
                if self._refused == 1:
                    logger.warning(
                        "%d %s wait for the broker; refusing more until it answers: "
                        "the sweeper will enqueue them",
                        len(self._items),
                        self.what,
                    )
                return False
            if self._refused:
                logger.warning(
                    "The broker takes %s again; %d were left to the sweeper",
                    self.what,
                    self._refused,
                )
                self._refused = 0
            self._items.append(str(item))
            if len(self._items) == 1 or len(self._items) >= self.max_batch:
                self._ready.notify()
        return True

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
                self.sending = True
            try:
                self._send(self._task(), items)
            finally:
                self.sending = False

    def _send(self, task, items: list[str]) -> None:
        try:
            # retry=False: with the broker down, fail at once; the sweeper sends them. A
            # broker that takes the connection and never answers holds this thread for the
            # transport's socket_timeout (settings.CELERY_BROKER_TRANSPORT_OPTIONS), while
            # the queue fills up to max_queued.
            task.apply_async(args=[items], retry=False)
        except (BrokerError, OSError, redis.RedisError) as exc:
            logger.warning(
                "Broker unreachable (%s); the sweeper will enqueue %d %s",
                type(exc).__name__,
                len(items),
                self.what,
            )
