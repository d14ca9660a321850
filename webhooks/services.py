"""Processing the inbox: a stored callback becomes timeline events, exactly once.

`inbox_process` parses a pending row with its provider's module (outside any transaction),
then, under a lock on the row, finds each message's delivery by provider message id (and the
environment the callback URL named, when it named one) and records the events with
`logs.services.event_record`, which is idempotent on the provider's event id. Running it twice,
or on two workers at once, records nothing twice.

A callback can beat our own Sent write: its message id is not known yet. The row stays
pending and is retried with backoff (by the sweeper) for WEBHOOK_RETRY_WINDOW, then marked
orphaned; `inbox_adopt` (run on commit of every Sent that names a message id: webhooks.apps)
and `orphans_adopt` (beat) bring it back once the id exists.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from logs.models import Delivery, Notification
from logs.services import event_record
from webhooks.events import CallbackEvent, UnparseableCallback
from webhooks.inbox import inbox_process_enqueue
from webhooks.models import InboxEntry, InboxState
from webhooks.receivers.email import email_events
from webhooks.receivers.twilio import twilio_sms_events, twilio_voice_events

logger = logging.getLogger("webhooks")

# The longest wait between two tries of a callback whose message is not known yet.
MAX_BACKOFF = timedelta(seconds=60)
# Rows the sweeper hands to workers per run (the next run takes the rest).
SWEEP_BATCH = 1000


def inbox_events(entry: InboxEntry) -> list[CallbackEvent]:
    """Parse a stored callback with its provider's module. Raises UnparseableCallback."""
    body = bytes(entry.body)
    if entry.provider == "twilio_sms":
        return twilio_sms_events(body, received_at=entry.received_at)
    if entry.provider == "twilio_voice":
        return twilio_voice_events(body, received_at=entry.received_at)
    return email_events(
        entry.provider,
        body=body,
        path=entry.path,
        headers=entry.headers,
        received_at=entry.received_at,
    )


@dataclass(frozen=True)
class _Target:
    notification_id: object
    notification_created_at: datetime
    environment_id: int
    source: str


class _Rejected(Exception):
    pass


def _delivery_target(entry: InboxEntry, event: CallbackEvent) -> _Target | None:
    """The delivery a callback event is about, or None when its message is not known yet.
    Raises _Rejected when the id names deliveries of several environments."""
    deliveries = Delivery.objects.filter(
        provider_message_id=event.provider_message_id, channel=event.channel
    )
    if entry.environment_restricted:
        # The callback URL named the environment whose credentials signed it: another
        # tenant's message with the same id can never be touched.
        deliveries = deliveries.filter(environment_id=entry.environment_id)
    found = list(
        deliveries.values_list(
            "notification_id", "notification_created_at", "environment_id", "provider"
        )[:2]
    )
    if not found:
        return None
    if len(found) > 1:
        raise _Rejected(
            f"Message id {event.provider_message_id[:80]} matches deliveries of more than one "
            "notification; add ?env=<client id> to the callback URL to say whose it is."
        )
    notification_id, created_at, environment_id, provider = found[0]
    # Sandbox deliveries answer through the real receivers; their timeline says sandbox.
    source = provider if provider == "sandbox" else entry.provider.split("_")[0]
    return _Target(notification_id, created_at, environment_id, source)


def _event_record(event: CallbackEvent, target: _Target) -> bool:
    delivery_fields = {}
    if event.kind == "failed" and (event.error_code or event.error_message):
        delivery_fields = {
            "error_code": event.error_code[:50],
            "error_message": event.error_message,
        }
    try:
        recorded = event_record(
            notification_id=target.notification_id,
            notification_created_at=target.notification_created_at,
            kind=event.kind,
            sub_kind=event.sub_kind,
            channel=event.channel,
            occurred_at=event.occurred_at,
            source=target.source,
            provider_event_id=event.provider_event_id,
            detail=event.detail,
            payload=event.payload,
            delivery_fields=delivery_fields,
        )
    except ValueError as exc:
        # The log refused it (e.g. a sub-kind that does not fit the channel).
        raise _Rejected(str(exc)) from None
    return recorded.created


@dataclass
class _Outcome:
    recorded: int = 0
    missing: tuple[str, ...] = ()
    environment_id: int | None = None


def _events_apply(entry: InboxEntry, events: Iterable[CallbackEvent]) -> _Outcome:
    outcome = _Outcome()
    missing = []
    for event in events:
        if event.kind is None:
            continue
        target = _delivery_target(entry, event)
        if target is None:
            missing.append(event.provider_message_id)
            continue
        try:
            outcome.recorded += _event_record(event, target)
        except Notification.DoesNotExist:
            missing.append(event.provider_message_id)
            continue
        outcome.environment_id = target.environment_id
    outcome.missing = tuple(dict.fromkeys(missing))
    return outcome


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


def _finish(entry: InboxEntry, *, recorded: int = 0, **changes) -> bool:
    """Record what became of a pending row; False when another worker finished it first."""
    changes.setdefault("next_attempt_at", None)
    return bool(
        InboxEntry.objects.filter(
            id=entry.id, received_at=entry.received_at, state=InboxState.PENDING
        ).update(
            attempts=F("attempts") + 1,
            events_recorded=F("events_recorded") + recorded,
            **changes,
        )
    )


def inbox_process(*, inbox_id: int) -> str | None:
    """Process one pending inbox row; returns its state afterwards (None: nothing to do).

    No transaction spans the row: each event is recorded in event_record's own, idempotent
    on the provider's event id, and the row's state is set after them with a conditional
    UPDATE. A worker dying in between leaves the row pending, and processing it again
    records nothing twice; two workers on one row record each event once between them."""
    entry = InboxEntry.objects.filter(id=inbox_id, state=InboxState.PENDING).first()
    if entry is None:
        return None
    now = timezone.now()
    try:
        events = inbox_events(entry)
    except UnparseableCallback as exc:
        logger.info("Inbox row %s (%s) is unparseable.", entry.id, entry.provider)
        _finish(entry, state=InboxState.UNPARSEABLE, processed_at=now, error=str(exc))
        return InboxState.UNPARSEABLE
    message_ids = list(dict.fromkeys(e.provider_message_id[:255] for e in events))
    try:
        outcome = _events_apply(entry, events)
    except _Rejected as exc:
        _finish(entry, state=InboxState.REJECTED, processed_at=now, message_ids=message_ids,
                error=str(exc))  # fmt: skip
        return InboxState.REJECTED
    common = {"recorded": outcome.recorded, "message_ids": message_ids}
    if outcome.environment_id and not entry.environment_id:
        common["environment_id"] = outcome.environment_id
    if not outcome.missing:
        _finish(entry, state=InboxState.PROCESSED, processed_at=now, error="", **common)
        return InboxState.PROCESSED
    error = f"No delivery has message id {', '.join(m[:80] for m in outcome.missing[:3])}."
    if now - entry.received_at >= timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW):
        _finish(entry, state=InboxState.ORPHANED, error=error, **common)
        return InboxState.ORPHANED
    _finish(entry, next_attempt_at=now + _backoff(entry.attempts + 1), error=error, **common)
    return InboxState.PENDING


def _rows_reopen(rows: Iterable[InboxEntry], now: datetime) -> list[int]:
    """Set rows back to pending, due now, and enqueue them on commit."""
    reopened = []
    for row in rows:
        InboxEntry.objects.filter(id=row.id, received_at=row.received_at).update(
            state=InboxState.PENDING, next_attempt_at=now
        )
        reopened.append(row.id)
    _enqueue_on_commit(reopened)
    return reopened


def _enqueue_on_commit(inbox_ids: list[int]) -> None:
    for inbox_id in inbox_ids:
        transaction.on_commit(_enqueuer(inbox_id))


def _enqueuer(inbox_id: int) -> Callable[[], None]:
    return lambda: inbox_process_enqueue(inbox_id=inbox_id)


def inbox_adopt(*, provider_message_id: str) -> None:
    """Process again the callbacks that waited for `provider_message_id` (orphaned, or still
    retrying). Run on commit of every Sent recorded with that id (webhooks.apps);
    safe to call for any id, any number of times."""
    if not provider_message_id:
        return
    now = timezone.now()
    with transaction.atomic():
        waiting = InboxEntry.objects.select_for_update(skip_locked=True).filter(
            state__in=[InboxState.ORPHANED, InboxState.PENDING],
            message_ids__contains=[provider_message_id[:255]],
        )
        _rows_reopen(list(waiting.only("id", "received_at")), now)


def orphans_adopt(*, within: timedelta = timedelta(days=1), limit: int = SWEEP_BATCH) -> int:
    """Reopen orphaned callbacks of the last `within` whose message id now has a delivery
    (a Sent that arrived without calling inbox_adopt). Returns how many were reopened."""
    now = timezone.now()
    with transaction.atomic():
        orphans = list(
            InboxEntry.objects.select_for_update(skip_locked=True)
            .filter(state=InboxState.ORPHANED, received_at__gte=now - within)
            .only("id", "received_at", "message_ids")[:limit]
        )
        wanted = {message_id for row in orphans for message_id in row.message_ids}
        known = set(
            Delivery.objects.filter(provider_message_id__in=wanted).values_list(
                "provider_message_id", flat=True
            )
        )
        adoptable = [row for row in orphans if known.intersection(row.message_ids)]
        return len(_rows_reopen(adoptable, now))


def inbox_sweep(*, limit: int = SWEEP_BATCH) -> int:
    """Enqueue pending rows that are due: never enqueued (the broker was down when they
    arrived) or waiting for a retry. Each gets a short lease so the next sweep does not
    enqueue it again while it waits in the queue. Returns how many were enqueued."""
    now = timezone.now()
    lease = now + timedelta(seconds=max(settings.WEBHOOK_SWEEP_INTERVAL * 6, 30))
    with transaction.atomic():
        due = list(
            InboxEntry.objects.select_for_update(skip_locked=True)
            .filter(state=InboxState.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("id", "received_at")[:limit]
        )
        for inbox_id, received_at in due:
            InboxEntry.objects.filter(id=inbox_id, received_at=received_at).update(
                next_attempt_at=lease
            )
        _enqueue_on_commit([inbox_id for inbox_id, _ in due])
    return len(due)


def inbox_replay(*, inbox_ids: Iterable[int]) -> int:
    """Staff's replay: process orphaned, unparseable or rejected callbacks once more (after
    a fix, or once the message exists). Returns how many were reopened."""
    now = timezone.now()
    with transaction.atomic():
        rows = InboxEntry.objects.select_for_update().filter(
            id__in=list(inbox_ids),
            state__in=[InboxState.ORPHANED, InboxState.UNPARSEABLE, InboxState.REJECTED],
        )
        return len(_rows_reopen(list(rows.only("id", "received_at")), now))
