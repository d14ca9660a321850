"""Storing a callback and handing it to processing. Kept apart from webhooks/services.py
(processing) so the receivers depend on storage only, never on the parsers."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from config.batching import TaskBatcher
from config.enqueue import task
from logs.statements import insert_statement, instances_written, prepared_rows
from webhooks.models import InboxEntry

logger = logging.getLogger("webhooks")

# A stored row is due for the sweeper after this long: by then the on-commit enqueue has
# normally processed it, so the sweeper only picks up what the broker never got.
SWEEP_GRACE = timedelta(seconds=30)
ENQUEUE_RETRY = {
    "max_retries": 2,
    "interval_start": 0.0,
    "interval_step": 0.15,
    "interval_max": 0.15,
}


def inbox_store(
    *,
    provider: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    environment_id: int | None,
) -> InboxEntry:
    """Store one authentic callback raw and enqueue its processing on commit. Never waits on
    the broker: when Redis is down the row waits for the sweeper."""
    now = timezone.now()
    # One INSERT, committed on its own (no BEGIN/COMMIT round trips around it): the row is
    # the whole write, and it must be durable before the provider hears 200.
    entry = InboxEntry(
        received_at=now,
        provider=provider,
        path=path,
        headers=headers,
        body=body,
        environment_id=environment_id,
        environment_restricted=environment_id is not None,
        next_attempt_at=now + SWEEP_GRACE,
    )
    # A prepared statement (planned once per connection, no ORM compilation): every
    # callback runs it. What save() would write (logs.statements.insert_statement).
    [(entry.id,)] = prepared_rows(*insert_statement(entry))
    instances_written(entry)
    # At once when there is no enclosing transaction; else after it commits. The batcher
    # only appends the id: the request never waits on Redis. A batcher that refuses it (its
    # queue full while Redis does not answer) leaves it to the sweeper: the row is already
    # committed, due at next_attempt_at.
    transaction.on_commit(lambda: inbox_batcher.add(entry.id))
    return entry


def _process_batch_task():
    return task("webhooks.tasks.inbox_process_batch_task")


# Stored callbacks leave each server process in batches (config/batching.py): a background
# thread sends one Celery message per INBOX_ENQUEUE_WAIT of callbacks, naming their rows.
# At 200 callbacks a second, one task (and one Redis round trip in the
# request) per callback cost more CPU than the callbacks themselves; a task's claim, lookup
# and closing UPDATE are shared by its rows. A message lost with its process, or refused by
# a broker that is down, costs latency only: the rows wait for the sweeper.
INBOX_ENQUEUE_WAIT = 0.05  # seconds
inbox_batcher = TaskBatcher(
    _process_batch_task, max_batch=50, max_wait=INBOX_ENQUEUE_WAIT, what="stored callbacks"
)


def inbox_process_enqueue(*, inbox_id: int | None) -> None:
    """Enqueue processing of one inbox row (the sweeper's, a replay's, a full batch's next),
    or leave it to the sweeper when the broker is unreachable: a stored callback is never
    lost, only delayed."""
    process_task = task("webhooks.tasks.inbox_process_task")
    try:
        # A short retry for a dropped connection, bounded (about 0.3 s) so a broker that is
        # down never holds the caller: the row is already safe in PostgreSQL.
        process_task.apply_async((inbox_id,), retry=True, retry_policy=ENQUEUE_RETRY)
    except Exception as exc:  # the broker's errors are many (kombu, redis, socket)
        logger.warning(
            "Could not enqueue inbox row %s (%s); the sweeper will process it.",
            inbox_id,
            type(exc).__name__,
        )
