"""Storing a callback and handing it to processing. Kept apart from webhooks/services.py
(processing) so the receivers depend on storage only, never on the parsers."""

import logging
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from logs.signals import insert_statement, instances_written, prepared_rows
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
    # callback runs it. What save() would write (logs.signals.insert_statement).
    [(entry.id,)] = prepared_rows(*insert_statement(entry))
    instances_written(entry)
    # At once when there is no enclosing transaction; else after it commits.
    transaction.on_commit(lambda: inbox_process_enqueue(inbox_id=entry.id, coalesce=True))
    return entry


# Set while a processing task is queued and not started yet (webhooks.services clears it when
# the task starts, before it claims): a callback stored meanwhile needs no task of its own,
# that task's claim will see it. The expiry bounds how long a lost flag (the enqueue after it
# failed) can hold tasks back; the sweeper covers such rows anyway.
TASK_QUEUED_FLAG = "webhooks:inbox-task-queued"
TASK_QUEUED_FLAG_TTL = 10  # seconds


def inbox_process_enqueue(*, inbox_id: int | None, coalesce: bool = False) -> None:
    """Enqueue processing of one inbox row, or leave it to the sweeper when the broker is
    unreachable: a stored callback is never lost, only delayed. With `coalesce` (a callback
    just stored), no task is enqueued while one is already queued and not started: at 200
    callbacks a second, one task per callback cost the worker more than the callbacks."""
    from webhooks.tasks import inbox_process_task

    if coalesce:
        try:
            if not cache.add(TASK_QUEUED_FLAG, inbox_id, timeout=TASK_QUEUED_FLAG_TTL):
                return
        except Exception as exc:  # Redis down: enqueue as without coalescing (it will fail too)
            logger.warning("Could not check for a queued inbox task (%s).", type(exc).__name__)
    try:
        # A short retry for a dropped connection, bounded (about 0.3 s) so a broker that is
        # down never holds the provider's request: the row is already safe in PostgreSQL.
        inbox_process_task.apply_async((inbox_id,), retry=True, retry_policy=ENQUEUE_RETRY)
    except Exception as exc:  # the broker's errors are many (kombu, redis, socket)
        logger.warning(
            "Could not enqueue inbox row %s (%s); the sweeper will process it.",
            inbox_id,
            type(exc).__name__,
        )
