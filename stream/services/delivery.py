"""Delivering the stream's messages: the drain claims each notification's next message
(a lease), signs and POSTs it outside any transaction, records the attempts, retries with
backoff and disables a subscriber whose every delivery failed for the retry window.

Delivery is at least once: a worker that dies after the POST and before recording it sends
again; the webhook-id header is the same every time, so receivers dedupe on it (Standard
Webhooks)."""

import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from standardwebhooks import Webhook

from accounts.crypto import secret_decrypt
from config import outbound
from config.outbound import OutboundResult
from logs.statements import prepared_rows
from stream.models import MessageState, StreamAttempt, StreamMessage, Subscription
from stream.services.outbox import (
    drain_flag_clear,
    drains_enqueue,
    retry_window,
    subscriptions_cache,
)

logger = logging.getLogger(__name__)

USER_AGENT = "notification-log-stream/1"


def subscription_drain(*, subscription_id: int) -> int:
    """Deliver a subscription's due messages, many notifications at once, each
    notification's in order: keep up to STREAM_DRAIN_BATCH messages in flight on
    STREAM_DRAIN_CONCURRENCY threads (over the transport's kept-alive connections), each the
    head of its notification (its first pending message). Outcomes are recorded a few at a
    time, each time in one statement, and the heads they free (those notifications' next
    events) are claimed as room frees, with no round waiting for its slowest answer.

    Stops when nothing is due or after STREAM_DRAIN_SECONDS (then enqueues itself again,
    behind other subscribers' drains, so one busy or slow subscriber never holds the outbound
    workers). A message that fails is not tried again in the same drain: its retry waits for
    its backoff. Returns how many messages were attempted."""
    drain_flag_clear(subscription_id)  # events recorded from now on enqueue another drain
    started = timezone.now()
    budget_ends = time.monotonic() + settings.STREAM_DRAIN_SECONDS
    batch = settings.STREAM_DRAIN_BATCH
    record_every = max(1, min(batch, settings.STREAM_DRAIN_CONCURRENCY) // 2)
    attempted = 0
    in_flight: dict[Future, _Claimed] = {}
    answered: list[tuple[_Claimed, OutboundResult]] = []
    may_find = True  # False after a claim that found less than it asked, until a record
    shared = False
    poster = _Poster()
    with ThreadPoolExecutor(settings.STREAM_DRAIN_CONCURRENCY, "stream-post") as pool:
        while True:
            room = batch - len(in_flight)
            if may_find and room >= batch // 2 and time.monotonic() < budget_ends:
                claimed = _claim(subscription_id=subscription_id, due_by=started, limit=room)
                may_find = len(claimed) == room
                if not shared and len(claimed) == batch:
                    # A backlog: another worker process may drain beside this one (they
                    # claim different notifications; each one's next event waits for this).
                    drains_enqueue([subscription_id])
                    shared = True
                for message in claimed:
                    in_flight[pool.submit(poster.post, message)] = message
            if not in_flight and not answered:
                break
            done: set[Future] = set()
            if in_flight:
                done, _ = wait(in_flight, timeout=0.05 if answered else None,
                               return_when=FIRST_COMPLETED)  # fmt: skip
                answered += [(in_flight.pop(future), future.result()) for future in done]
            if answered and (len(answered) >= record_every or not done or not in_flight):
                _attempts_record(*zip(*answered, strict=True), chain=False)
                attempted += len(answered)
                answered = []
                may_find = True
    if time.monotonic() >= budget_ends:
        drains_enqueue([subscription_id])
    return attempted


def message_deliver(*, message_id: int) -> str:
    """Send one message if it is due: pending, not being sent by another worker, its
    subscription enabled and no earlier message of its notification pending. Returns what
    happened: "delivered", "retry", "given_up" or "skipped"."""
    now = timezone.now()
    heads = messages_deliverable(StreamMessage.objects.filter(pk=message_id), now=now)
    messages = _lease(list(heads.values_list("pk", flat=True)), now)
    if not messages:
        return "skipped"
    [outcome] = _attempts_record(messages, [_Poster().post(messages[0])])
    return outcome


def messages_deliverable(messages, *, now: datetime):
    """Those of `messages` that may go out now: pending, not leased, of an enabled
    subscription, and first in line for their notification (no earlier one pending)."""
    earlier = StreamMessage.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        notification_id=OuterRef("notification_id"),
        state=MessageState.PENDING,
        id__lt=OuterRef("id"),
    )
    return (
        messages.filter(state=MessageState.PENDING, subscription__enabled=True)
        .filter(Q(leased_until=None) | Q(leased_until__lte=now))
        .exclude(Exists(earlier))
    )


@dataclass
class _Claimed:
    """A leased message, with what its POST needs."""

    id: int
    subscription_id: int
    environment_id: int
    webhook_id: str
    body: str  # the JSON text as stored: sent (and signed) as it is, never parsed
    retry_until: datetime
    attempt_count: int
    url: str
    secret_encrypted: str


_MESSAGES = StreamMessage._meta.db_table
_SUBSCRIPTIONS = Subscription._meta.db_table
# A window of a subscription's pending messages in id order (the partial index
# stream_msg_queue, read from its start or after the last window), each with whether it may
# go out now if it heads its notification: not leased, and new or due a retry.
_WINDOW = f"""
SELECT id, notification_id,
    (leased_until IS NULL OR leased_until <= %(now)s)
        AND (attempt_count = 0 OR next_attempt_at <= %(due_by)s)
FROM {_MESSAGES}
WHERE subscription_id = %(subscription)s AND state = 'pending' AND id > %(after)s
ORDER BY id
LIMIT %(size)s
"""  # noqa: S608 (the table name is ours; every value is a parameter)
# Lease the chosen heads and count their attempt, those still pending and not leased, of an
# enabled subscription. SKIP LOCKED: two drains claim different messages.
_LEASE = f"""
UPDATE {_MESSAGES} AS m
SET leased_until = %(leased_until)s, attempt_count = m.attempt_count + 1
FROM (
    SELECT id FROM {_MESSAGES}
    WHERE id = ANY(%(ids)s::bigint[]) AND state = 'pending'
        AND (leased_until IS NULL OR leased_until <= %(now)s)
    ORDER BY id
    FOR UPDATE SKIP LOCKED
) AS claimed, {_SUBSCRIPTIONS} AS s
WHERE m.id = claimed.id AND s.id = m.subscription_id AND s.enabled
RETURNING m.id, m.subscription_id, m.environment_id, m.webhook_id, m.body::text,
    m.retry_until, m.attempt_count, s.url, s.secret_encrypted
"""  # noqa: S608 (the table names are ours; every value is a parameter)


def _claim(*, subscription_id: int, due_by: datetime, limit: int) -> list[_Claimed]:
    """Lease up to `limit` heads of the subscription (each notification's first pending
    message) that may go out now, oldest first.

    The subscription's pending messages are read in id order, a window at a time: a message
    heads its notification if none of the notification's came before it in the windows
    read, since those hold every pending message with a smaller id. So a claim reads about a
    batch's worth of the backlog (more only behind long chains of one notification), never
    the whole of it. Before, an "earlier one pending?" subquery per message was planned, on
    a freshly filled table's statistics, as a scan of the backlog for each message."""
    now = timezone.now()
    heads: list[int] = []
    seen: set[uuid.UUID] = set()
    params = {"now": now, "due_by": due_by, "subscription": subscription_id, "after": 0}
    params["size"] = size = 4 * settings.STREAM_DRAIN_BATCH
    while len(heads) < limit:
        rows = prepared_rows(_WINDOW, params)
        for message_id, notification_id, may_go in rows:
            if notification_id not in seen:
                seen.add(notification_id)
                if may_go:
                    heads.append(message_id)
        if len(rows) < size:
            break
        params["after"] = rows[-1][0]
    return _lease(heads[:limit], now)


def _lease(ids: list[int], now: datetime) -> list[_Claimed]:
    if not ids:
        return []
    leased_until = now + timedelta(seconds=settings.STREAM_TIMEOUT_SECONDS + 30)
    rows = prepared_rows(_LEASE, {"ids": ids, "now": now, "leased_until": leased_until})
    return sorted((_Claimed(*row) for row in rows), key=lambda message: message.id)


class _Poster:
    """Signs and posts claimed messages; each subscription's secret is decrypted once."""

    def __init__(self):
        self._signers: dict[str, Webhook] = {}

    def post(self, message: _Claimed) -> OutboundResult:
        signer = self._signers.get(message.secret_encrypted)
        if signer is None:
            signer = Webhook(secret_decrypt(message.secret_encrypted))
            self._signers[message.secret_encrypted] = signer
        body = message.body.encode()
        headers = _headers(
            signer, webhook_id=message.webhook_id, sent_at=timezone.now(), body=body
        ) | {"content-type": "application/json", "user-agent": USER_AGENT}
        return outbound.post(
            message.url, content=body, headers=headers, deadline=settings.STREAM_TIMEOUT_SECONDS
        )


def message_sign(*, secret: str, webhook_id: str, sent_at: datetime, body: bytes) -> dict:
    """The Standard Webhooks headers for one POST (standardwebhooks signs)."""
    return _headers(Webhook(secret), webhook_id=webhook_id, sent_at=sent_at, body=body)


def _headers(signer: Webhook, *, webhook_id: str, sent_at: datetime, body: bytes) -> dict:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signer.sign(webhook_id, sent_at, body.decode()),
    }


# A batch's outcomes in one statement: every attempt inserted, each message's new state
# (finished, or its retry's time), and the subscriber's failing_since cleared when any answer
# was a success. One array per column, so the text is the same whatever the batch's size
# (prepared, planned once per connection). NULL keeps a column.
_RECORD = f"""
WITH outcome AS (
    SELECT * FROM unnest(%(id)s::bigint[], %(state)s::varchar[], %(next_attempt_at)s::timestamptz[],
        %(status_code)s::integer[], %(error)s::varchar[], %(duration_ms)s::integer[])
        AS o(id, state, next_attempt_at, status_code, error, duration_ms)
), attempts AS (
    INSERT INTO {StreamAttempt._meta.db_table}
        (message_id, attempted_at, status_code, error, duration_ms)
    SELECT id, %(now)s, status_code, error, duration_ms FROM outcome
), working AS (
    UPDATE {_SUBSCRIPTIONS} SET failing_since = NULL
    WHERE id = ANY(%(working)s::bigint[]) AND failing_since IS NOT NULL
)
UPDATE {_MESSAGES} AS m SET
    state = COALESCE(o.state, m.state),
    finished_at = CASE WHEN o.state IS NULL THEN m.finished_at ELSE %(now)s END,
    next_attempt_at = COALESCE(o.next_attempt_at, m.next_attempt_at),
    leased_until = NULL
FROM outcome AS o
WHERE m.id = o.id
"""  # noqa: S608 (the table names are ours; every value is a parameter)


def _attempts_record(
    messages: Sequence[_Claimed], results: Sequence[OutboundResult], *, chain: bool = True
) -> list[str]:
    """Every attempt and each message's new state, in one statement. Returns each message's
    outcome: "delivered", "retry" or "given_up". With `chain`, a drain is enqueued for the
    messages that were waiting for a finished one (a drain goes on by itself)."""
    now = timezone.now()
    outcomes = []
    states: list[str | None] = []
    next_attempts: list[datetime | None] = []
    for message, result in zip(messages, results, strict=True):
        if result.succeeded:
            outcome = MessageState.DELIVERED
        else:
            outcome = MessageState.GIVEN_UP if now >= message.retry_until else "retry"
        outcomes.append(str(outcome))
        retry = outcome == "retry"
        states.append(None if retry else str(outcome))
        next_attempts.append(now + _backoff(message.attempt_count) if retry else None)
    # The subscriber works if any answer was a success; it fails only if none was.
    succeeded: dict[int, bool] = {}
    for message, result in zip(messages, results, strict=True):
        succeeded[message.subscription_id] = (
            succeeded.get(message.subscription_id, False) or result.succeeded
        )
    params = {
        "id": [message.id for message in messages],
        "state": states,
        "next_attempt_at": next_attempts,
        "status_code": [result.status_code for result in results],
        "error": [result.error for result in results],
        "duration_ms": [result.duration_ms for result in results],
        "now": now,
        "working": [pk for pk, works in succeeded.items() if works],
    }
    failing = [pk for pk, works in succeeded.items() if not works]
    with transaction.atomic() if failing else contextlib.nullcontext():
        prepared_rows(_RECORD, params)
        for message in {m.subscription_id: m for m in messages}.values():
            if message.subscription_id in failing:
                _subscription_failed(message.subscription_id, message.environment_id, now)
    if chain and any(state is not None for state in states):
        # The next event of those notifications was waiting for them.
        drains_enqueue([message.subscription_id for message in messages])
    return outcomes


def _subscription_failed(subscription_id: int, environment_id: int, now: datetime) -> None:
    Subscription.objects.filter(pk=subscription_id, failing_since=None).update(failing_since=now)
    reason = (
        f"Disabled at {now:%Y-%m-%d %H:%M} UTC: every delivery failed for "
        f"{_window_text()}. Fix the endpoint, then tick Enabled to resume."
    )
    disabled = Subscription.objects.filter(
        pk=subscription_id, enabled=True, failing_since__lte=now - retry_window()
    ).update(enabled=False, disabled_at=now, disabled_reason=reason)
    if disabled:
        transaction.on_commit(subscriptions_cache.clear)
        logger.warning(
            "Stream subscription %s (environment %s) disabled: every delivery failed for %s",
            subscription_id,
            environment_id,
            _window_text(),
        )


def _backoff(attempts: int) -> timedelta:
    seconds = settings.STREAM_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.STREAM_RETRY_MAX_BACKOFF_SECONDS))


def _window_text() -> str:
    hours = settings.STREAM_RETRY_WINDOW_SECONDS / 3600
    return f"{hours:g} hours" if hours >= 1 else f"{settings.STREAM_RETRY_WINDOW_SECONDS:g} s"
