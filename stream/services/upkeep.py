"""Putting the stream's messages back in line and taking them out: the sweeper, a replay
from the console, the nightly purge of finished messages and a user's erasure."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Environment
from config.batches import BATCH_SIZE, rows_delete
from logs.erasure import ErasedBatch, raw_delete
from stream.models import MessageState, StreamMessage
from stream.services.delivery import messages_deliverable
from stream.services.outbox import drains_enqueue, retry_window


def messages_sweep(*, limit: int = 500) -> int:
    """Enqueue a drain for every subscription with a message that is due (a retry's backoff
    passed, or the broker never got the message's drain) and first in line for its
    notification. Drains claim with SKIP LOCKED and a lease, so a spare one sends nothing
    twice. Returns how many subscriptions were enqueued."""
    now = timezone.now()
    due = messages_deliverable(StreamMessage.objects.filter(next_attempt_at__lte=now), now=now)
    subscription_ids = list(
        due.order_by().values_list("subscription_id", flat=True).distinct()[:limit]
    )
    drains_enqueue(subscription_ids)
    return len(subscription_ids)


def message_replay(*, message_ids: list[int]) -> int:
    """Send messages again (delivered or given up ones too), with the same webhook-id and a
    fresh retry window. Returns how many were put back in line."""
    now = timezone.now()
    with transaction.atomic():
        replayed = StreamMessage.objects.filter(pk__in=message_ids)
        subscription_ids = list(replayed.values_list("subscription_id", flat=True).distinct())
        count = replayed.update(
            state=MessageState.PENDING,
            finished_at=None,
            leased_until=None,
            retry_until=now + retry_window(),
            next_attempt_at=now,
        )
        transaction.on_commit(lambda: drains_enqueue(subscription_ids))
    return count


def messages_purge(*, older_than_days: int, batch_size: int = BATCH_SIZE) -> int:
    """Remove finished messages (and their attempts) older than the logs they came from, in
    short batches: after `older_than_days` (the install's retention), or after an account's
    own shorter retention for its environments' messages (they carry its users' ids and
    event details). Returns how many went."""
    removed = _finished_messages_purge(
        StreamMessage.objects.all(), older_than_days=older_than_days, batch_size=batch_size
    )
    shorter = Account.objects.filter(retention_days__lt=older_than_days)
    for account_id, retention_days in shorter.values_list("pk", "retention_days"):
        environment_ids = Environment.all_objects.filter(account_id=account_id).values_list(
            "pk", flat=True
        )
        messages = StreamMessage.objects.filter(environment_id__in=list(environment_ids))
        removed += _finished_messages_purge(
            messages, older_than_days=retention_days, batch_size=batch_size
        )
    return removed


def _finished_messages_purge(messages, *, older_than_days: int, batch_size: int) -> int:
    # Along the created_at index, a batch per short transaction (config/batches.py); each
    # batch's attempts go with it by the database's cascade (indexed on message_id).
    cutoff = timezone.now() - timedelta(days=older_than_days)
    return rows_delete(
        messages.filter(created_at__lt=cutoff).exclude(state=MessageState.PENDING),
        order_by="created_at",
        batch_size=batch_size,
    )


def stream_messages_erase(batch: ErasedBatch) -> int:
    """A user's erasure (logs.erasure): the stream messages of a batch of their notifications
    (their attempts go with them: ON DELETE CASCADE)."""
    return raw_delete(batch.naming(StreamMessage))
