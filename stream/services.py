"""The outbound event stream: write the outbox with the event, deliver signed POSTs outside
any transaction, retry with backoff, keep each notification's events in order.

Delivery is at least once: a worker that dies after the POST and before recording it sends
again; the webhook-id header is the same every time, so receivers dedupe on it (Standard
Webhooks)."""

import base64
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from standardwebhooks import Webhook

from accounts.crypto import secret_decrypt, secret_encrypt
from accounts.models import Account, Environment
from config import outbound
from config.batches import BATCH_SIZE, rows_delete
from config.enqueue import task
from config.hotcache import HotCache
from config.outbound import OutboundResult
from logs.erasure import ErasedBatch, raw_delete
from logs.statements import prepared_rows
from logs.vocabulary import SUB_KINDS_BY_KIND, EventKind
from stream import compat
from stream.models import MessageState, PayloadFormat, StreamAttempt, StreamMessage, Subscription

logger = logging.getLogger(__name__)

USER_AGENT = "notification-log-stream/1"


# --- subscriptions ---------------------------------------------------------------------------


def subscription_filters_check(*, kinds: list[str], sub_kinds: list[str], payload_format: str):
    """Errors by field name ({} when the choice is valid): every sub-kind must belong to a
    chosen kind, and the compatibility format only takes what it has an eventType for."""
    errors: dict[str, str] = {}
    if not kinds:
        errors["kinds"] = "Choose at least one event kind."
    unknown = [k for k in kinds if k not in EventKind.values]
    if unknown:
        errors["kinds"] = f"Unknown event kind(s): {', '.join(unknown)}."
    allowed = set().union(*(SUB_KINDS_BY_KIND.get(kind, ()) for kind in kinds))
    stray = [s for s in sub_kinds if s not in allowed]
    if stray:
        errors["sub_kinds"] = (
            f"Sub-kind(s) {', '.join(stray)} belong to no chosen kind: choose their kind too, "
            "or remove them."
        )
    if payload_format == PayloadFormat.NOTIFICATIONAPI:
        unsent = [k for k in kinds if k not in compat.KINDS]
        if unsent:
            errors["kinds"] = (
                f"The NotificationAPI format has no eventType for {', '.join(unsent)}: choose "
                "Failed and/or Engagement, or the Standard Webhooks format."
            )
        unsent_subs = [s for s in sub_kinds if s not in compat.SUB_KINDS]
        if unsent_subs:
            errors["sub_kinds"] = (
                f"The NotificationAPI format has no eventType for {', '.join(unsent_subs)}."
            )
    return errors


def subscription_secret_generate() -> str:
    # Standard Webhooks' secret format: whsec_ and base64 of 24 to 64 random bytes.
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def subscription_create(
    *,
    environment: Environment,
    url: str,
    kinds: list[str],
    sub_kinds: list[str] | None = None,
    payload_format: str = PayloadFormat.STANDARD,
) -> tuple[Subscription, str]:
    """Validate and save a subscription; returns it and its signing secret (shown once)."""
    sub_kinds = sub_kinds or []
    outbound.url_check(url)
    errors = subscription_filters_check(
        kinds=kinds, sub_kinds=sub_kinds, payload_format=payload_format
    )
    if errors:
        raise ValidationError(errors)
    secret = subscription_secret_generate()
    subscription = Subscription.objects.create(
        environment=environment,
        url=url,
        kinds=kinds,
        sub_kinds=sub_kinds,
        payload_format=payload_format,
        secret_encrypted=secret_encrypt(secret),
    )
    return subscription, secret


def subscription_enable(*, subscription: Subscription) -> int:
    """Turn a disabled subscriber back on: its pending messages get a fresh retry window and
    go out at once. Returns how many were pending."""
    now = timezone.now()
    with transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(
            enabled=True, failing_since=None, disabled_at=None, disabled_reason=""
        )
        transaction.on_commit(subscriptions_cache.clear)
        pending = StreamMessage.objects.filter(subscription=subscription, state="pending")
        count = pending.update(retry_until=now + _window(), next_attempt_at=now)
        transaction.on_commit(lambda: drains_enqueue([subscription.pk]))
    return count


# --- the outbox, written with the event ------------------------------------------------------

# An environment's enabled subscriptions, for HOT_CACHE_SECONDS (every event reads them; most
# environments have none): see config/hotcache.py. Cleared in this process on any change.
subscriptions_cache = HotCache("stream subscriptions")


def _enabled_subscriptions(environment_id: int) -> list[Subscription]:
    return subscriptions_cache.get(
        environment_id,
        lambda: list(Subscription.objects.filter(environment_id=environment_id, enabled=True)),
    )


def stream_event_enqueue(sender, *, notification, delivery, event, batch=None, **kwargs) -> None:
    """logs.signals.event_recorded receiver: one outbox row per matching subscription, in the
    event's transaction; their delivery is enqueued once it commits. No network here."""
    subscriptions = [
        subscription
        for subscription in _enabled_subscriptions(notification.environment_id)
        if event.kind in subscription.kinds and _matches(subscription, event)
    ]
    if subscriptions and batch is not None:
        batch.transaction()  # the event's id goes in the message; the hook waits for commit
    now = timezone.now()
    messages = []
    for subscription in subscriptions:
        event_type, body = _body(subscription.payload_format, notification, delivery, event)
        if event_type is None:
            continue
        messages.append(
            StreamMessage(
                subscription=subscription,
                environment_id=notification.environment_id,
                notification_id=notification.id,
                event_id=event.id,
                event_type=event_type,
                webhook_id=f"msg_{uuid.uuid4().hex}",
                body=body,
                created_at=now,
                retry_until=now + _window(),
                next_attempt_at=now + _sweep_after(),
            )
        )
    if messages:
        StreamMessage.objects.bulk_create(messages)
        subscription_ids = [subscription.pk for subscription in subscriptions]
        transaction.on_commit(lambda: drains_enqueue(subscription_ids))


def _matches(subscription: Subscription, event) -> bool:
    # Sub-kinds narrow only the kinds they belong to: [Failed, Delivered] with [Bounce]
    # means bounces and every Delivered.
    narrowing = [s for s in subscription.sub_kinds if s in SUB_KINDS_BY_KIND.get(event.kind, ())]
    return not narrowing or event.sub_kind in narrowing


def _body(payload_format: str, notification, delivery, event) -> tuple[str | None, dict]:
    if payload_format == PayloadFormat.NOTIFICATIONAPI:
        event_type = compat.event_type(
            kind=event.kind, sub_kind=event.sub_kind, channel=event.channel
        )
        if event_type is None:
            return None, {}
        return event_type, compat.body(
            event_type=event_type, notification=notification, channel=event.channel
        )
    event_type = f"notification.{event.kind}" + (f".{event.sub_kind}" if event.sub_kind else "")
    data = {
        "trackingId": str(notification.id),
        "eventId": event.id,
        "notificationType": notification.notification_type,
        "userId": notification.user_id,
        "channel": event.channel,
        "kind": event.kind,
        "subKind": event.sub_kind,
        "source": event.source,
        "detail": event.detail,
        "occurredAt": event.occurred_at.isoformat(),
        "recordedAt": event.recorded_at.isoformat(),
        "deliveryState": delivery.state if delivery is not None else None,
        "notificationStatus": notification.status,
    }
    return event_type, {
        "type": event_type,
        "timestamp": event.occurred_at.isoformat(),
        "data": data,
    }


def drains_enqueue(subscription_ids) -> None:
    """Hand subscriptions with messages to deliver to the outbound workers: one drain task per
    subscription, not one per message. A drain already queued for a subscription (a flag in
    the cache, cleared when the drain starts) takes the new messages too, so a busy
    environment queues one task, not one per event. Never raises for a broker outage: the
    sweeper enqueues them once it is back (their next_attempt_at passes)."""
    drain_task = task("stream.tasks.stream_subscription_drain_task")
    for subscription_id in dict.fromkeys(subscription_ids):
        try:
            queued = cache.add(_drain_flag(subscription_id), 1, _drain_flag_seconds())
        except Exception:  # the cache is down: enqueue anyway (a spare drain finds nothing)
            queued = True
        if not queued:
            continue
        try:
            drain_task.apply_async(args=[subscription_id], retry=False)
        except (BrokerError, OSError) as exc:
            _drain_flag_clear(subscription_id)
            logger.warning(
                "Broker unreachable (%s); the stream sweeper will deliver subscription %s's "
                "messages",
                type(exc).__name__,
                subscription_id,
            )
            return


def _drain_flag(subscription_id: int) -> str:
    return f"stream:drain-queued:{subscription_id}"


def _drain_flag_seconds() -> float:
    # A lost task's flag lapses after about one drain's length; the sweeper enqueues again.
    return settings.STREAM_DRAIN_SECONDS + settings.STREAM_TIMEOUT_SECONDS + 60


def _drain_flag_clear(subscription_id: int) -> None:
    with contextlib.suppress(Exception):
        cache.delete(_drain_flag(subscription_id))


# --- delivery --------------------------------------------------------------------------------


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
    _drain_flag_clear(subscription_id)  # events recorded from now on enqueue another drain
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
    heads = _heads(StreamMessage.objects.filter(pk=message_id), now=now)
    messages = _lease(list(heads.values_list("pk", flat=True)), now)
    if not messages:
        return "skipped"
    [outcome] = _attempts_record(messages, [_Poster().post(messages[0])])
    return outcome


def _heads(messages, *, now: datetime):
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


def _subscription_succeeded(subscription_id: int) -> None:
    # Filtered so the common case (not failing) updates, and locks, nothing.
    Subscription.objects.filter(pk=subscription_id, failing_since__isnull=False).update(
        failing_since=None
    )


def _subscription_failed(subscription_id: int, environment_id: int, now: datetime) -> None:
    Subscription.objects.filter(pk=subscription_id, failing_since=None).update(failing_since=now)
    reason = (
        f"Disabled at {now:%Y-%m-%d %H:%M} UTC: every delivery failed for "
        f"{_window_text()}. Fix the endpoint, then tick Enabled to resume."
    )
    disabled = Subscription.objects.filter(
        pk=subscription_id, enabled=True, failing_since__lte=now - _window()
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


def _window() -> timedelta:
    return timedelta(seconds=settings.STREAM_RETRY_WINDOW_SECONDS)


def _window_text() -> str:
    hours = settings.STREAM_RETRY_WINDOW_SECONDS / 3600
    return f"{hours:g} hours" if hours >= 1 else f"{settings.STREAM_RETRY_WINDOW_SECONDS:g} s"


def _sweep_after() -> timedelta:
    return timedelta(seconds=settings.STREAM_SWEEP_AFTER_SECONDS)


# --- sweeping, replay, purge -----------------------------------------------------------------


def messages_sweep(*, limit: int = 500) -> int:
    """Enqueue a drain for every subscription with a message that is due (a retry's backoff
    passed, or the broker never got the message's drain) and first in line for its
    notification. Drains claim with SKIP LOCKED and a lease, so a spare one sends nothing
    twice. Returns how many subscriptions were enqueued."""
    now = timezone.now()
    due = _heads(StreamMessage.objects.filter(next_attempt_at__lte=now), now=now)
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
            retry_until=now + _window(),
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
