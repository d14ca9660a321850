"""Writes to the log. One action per state change: the event row, the delivery state and the
notification status change together, in one transaction, under a row lock on the
notification, so two workers recording events of one notification at once cannot lose an
update (each recomputes from every event, after the other's commit).

`event_record` is a short sequence of named steps: validate everything before anything is
written, choose the dedupe key, lock the notification, find the same event already recorded,
find or make the channel's delivery, insert the event, and recompute the delivery's state and
the notification's status from every event (logs.status holds the rules).

It writes only what changed and reads only what it needs: every write of a log row is a new
row version and, unless no indexed column changed (a heap-only, HOT, update), an entry in
each of its indexes. So a delivery is inserted with the event that makes it (not empty, then
updated), its content is written by the event that carries it (Sending) and never read or
written back, a row that an event leaves as it was (an Opened; a Sent that keeps the
notification Received) is not updated at all, and the notification's request and merge tags
(up to a megabyte each) are not read. What is left changes an indexed column (a
notification's status, a delivery's state or provider message id, which the support searches
and the callbacks' lookup need indexed), so it cannot be heap-only; bench/writes.py counts
it."""

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from logs.citus import environment_groups
from logs.models import Delivery, Event, Notification, merge_tags_stored
from logs.payloads import payload_fields
from logs.signals import event_recorded
from logs.statements import (
    SharedRowWrites,
    StatementBatch,
    field_preparer,
    insert_statement,
    instances_written,
    prepared_instances,
    prepared_rows,
)
from logs.status import EventFact, delivery_outcome, notification_status
from logs.timeline import (
    IN_APP_DELIVERED_KEY,
    SOURCE_API,
    SOURCE_IN_APP,
    SOURCE_PIPELINE,
    delivery_events_unstored,
    received_event,
    sending_key,
    sent_key,
    synthesized,
)
from logs.vocabulary import (
    REQUEST_LEVEL_SUB_KINDS_BY_KIND,
    REQUEST_OUTCOME_KINDS,
    SUB_KINDS_BY_CHANNEL,
    SUB_KINDS_BY_KIND,
    Channel,
    EventKind,
)

# Delivery columns an event may set along the way (the provider's id on Sent, the error on
# Failed, the rendered content on Sending). Anything else is refused.
DELIVERY_FIELDS = frozenset(
    {
        "provider",
        "provider_message_id",
        "reports_delivery",
        "destination",
        "subject",
        "html",
        "text",
        "content_packed",
        "content_dictionary_id",
        "error_code",
        "error_message",
    }
)


_DEDUPE_KEY_MAX = Event._meta.get_field("dedupe_key").max_length
# The delivery columns the send pipeline's own events are folded into (logs/timeline.py,
# docs/event-storage.md): set by the event they stand for, when it is exactly representable.
_FOLD_COLUMNS = ("sending_at", "accepted_at", "sender", "send_max_attempts")
# What the status rules decide on a delivery: saved when it changes.
_DELIVERY_OUTCOME = ("state", "state_detail", "sent_at", "delivered_at", "failed_at")
# The rendered content (up to a megabyte, stored out of line): written by the event that
# carries it (Sending), never read by event_record, and so never written back by another.
_DELIVERY_CONTENT = frozenset(
    {"subject", "html", "text", "content_packed", "content_dictionary_id"}
)
# Columns event_record does not read: the content, and the notification's request and merge
# tags (up to a megabyte each, parsed on every read). The instances it gives back (and to the
# event_recorded receivers) have them deferred: reading one costs a query.
# Notification.request_template_id is read on its own.
_UNREAD = {
    Delivery: _DELIVERY_CONTENT,
    Notification: frozenset({"request", "stored_merge_tags"}),
}
# A notification's creation time as a caller may know it: epoch milliseconds (JavaScript's
# Date, most JSON APIs) lose the microseconds PostgreSQL keeps, truncated or rounded.
_CREATED_AT_PRECISION = timedelta(milliseconds=1)


@dataclass(frozen=True)
class RecordedEvent:
    notification: Notification
    delivery: Delivery | None
    event: Event
    # False when the same event (same dedupe key) was already recorded: nothing changed.
    created: bool


# --- the payload hash ---------------------------------------------------------------------------

# Times providers write in their payloads as text: ISO 8601 with an offset ("…T12:00:00Z",
# "…T13:00:00+01:00") and RFC 2822 (Twilio's `Timestamp`: "Fri, 20 Nov 2026 12:00:00 +0000").
# A time without an offset names no instant and is left as written.
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)")
_RFC_2822_TIME = re.compile(
    r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"
)


def event_dedupe_key(
    *,
    kind: str,
    sub_kind: str,
    channel: str,
    occurred_at: datetime | None,
    source: str,
    payload: Any,
) -> str:
    """A stable key for an event the provider gave no id for: a hash of what it says.

    Every time in it is hashed in UTC, the payload's included (datetime objects and time
    strings with an offset, at any depth): the same instant written in two zones is the same
    event. An occurred_at in UTC and a payload without times hash as they always did."""
    canonical = json.dumps(
        [
            kind,
            sub_kind,
            channel,
            _utc_text(occurred_at) if occurred_at else None,
            source,
            _times_mapped(payload, _utc_text, in_text=True),
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _times_mapped(value: Any, convert: Callable[[datetime], str], *, in_text: bool) -> Any:
    """`value` with every datetime in it (at any depth) replaced by `convert(datetime)`, and
    with `in_text` every string that writes an instant too."""
    if isinstance(value, Mapping):
        return {key: _times_mapped(item, convert, in_text=in_text) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_times_mapped(item, convert, in_text=in_text) for item in value]
    if isinstance(value, datetime):
        return convert(value)
    if in_text and isinstance(value, str) and (moment := _time_in_text(value)) is not None:
        return convert(moment)
    return value


def _time_in_text(text: str) -> datetime | None:
    try:
        if _ISO_TIME.fullmatch(text):
            return datetime.fromisoformat(text)
        if _RFC_2822_TIME.fullmatch(text):
            return parsedate_to_datetime(text)
    except ValueError:  # shaped like a time but not one (a 61st minute): plain text
        pass
    return None


def _utc_text(moment: datetime) -> str:
    if moment.utcoffset() is None:
        return moment.isoformat()  # naive: names no instant, so nothing to normalise
    return moment.astimezone(UTC).isoformat()


def _payload_storable(payload: Any) -> Any:
    # JSON has no datetime: one given inside a payload is stored as ISO 8601, in its own
    # zone. Strings are kept exactly as the provider wrote them.
    return _times_mapped(payload, datetime.isoformat, in_text=False)


# --- services -----------------------------------------------------------------------------------


def notification_create(
    *,
    environment_id: int,
    notification_type: str,
    user_id: str,
    email: str = "",
    number: str = "",
    timezone_name: str = "",
    merge_tags: Mapping[str, Any] | None = None,
    request: Mapping[str, Any] | None = None,
    created_at: datetime | None = None,
    source: str = "api",
    idempotency_key: str = "",
    scheduled_for: datetime | None = None,
    statements_after: Sequence[tuple[str, Sequence[Any]]] = (),
    notification_id: uuid.UUID | None = None,
) -> Notification:
    """Write a notification; its Received event is folded into it (logs.timeline: no row)
    when it came through the API, as every send does (and LOG_FOLD_PIPELINE_EVENTS is on),
    else written as a row with it.
    `number` must already be E.164 (logs.phone.phone_normalize).

    One round trip to PostgreSQL: the INSERT, what the event_recorded receivers add to the
    batch (logs.statements), and `statements_after` (the caller's rows that must commit with
    the notification, e.g. its outbox row) go as one statement, which commits or
    fails as a whole (inside the caller's transaction, when there is one). A folded
    Received's id (the stream's eventId) is drawn from the events' sequence in it."""
    created_at = created_at or timezone.now()
    notification = Notification(
        id=notification_id or uuid.uuid4(),
        environment_id=environment_id,
        notification_type=notification_type,
        user_id=user_id,
        email=email,
        number=number,
        timezone=timezone_name,
        stored_merge_tags=merge_tags_stored(merge_tags or {}, request),
        request=dict(request or {}),
        created_at=created_at,
        updated_at=created_at,
        idempotency_key=idempotency_key,
        scheduled_for=scheduled_for,
    )
    received = received_event(notification)
    received.source = source
    folded = source == SOURCE_API and settings.LOG_FOLD_PIPELINE_EVENTS
    with ExitStack() as stack:
        batch = StatementBatch(stack)
        batch.add(*insert_statement(notification))
        batch.add(
            *(_NEXT_EVENT_ID, []) if folded else insert_statement(received),
            on_value=lambda id_: setattr(received, "id", id_),
        )
        event_recorded.send(
            Event,
            notification=notification,
            delivery=None,
            event=received,
            batch=batch,
            first_of_kind=True,
        )
        for sql, params in statements_after:
            batch.add(sql, params)
        batch.send()
    instances_written(notification, *([] if folded else [received]))
    return notification


@dataclass(frozen=True)
class EventSpec:
    """One event to record (event_record's arguments; events_record takes a list of them).

    `channel` is a logs.vocabulary.Channel value, and `sub_kind` must fit it
    (SUB_KINDS_BY_CHANNEL). Without a channel the event belongs to the whole request: its
    Received, or a request-level Failed (no sub-kind) or Ignored, which decides the status
    by itself (logs.status.notification_status). `notification_created_at`, when given,
    narrows the lookup to one day's partition; to the millisecond is precise enough. The
    same event twice (same provider event id, else same dedupe key, else same payload hash)
    is recorded once. `delivery_fields` sets DELIVERY_FIELDS on the channel's delivery."""

    notification_id: uuid.UUID
    kind: str
    source: str
    # The notification's environment, when the caller knows it: on Citus the lock then runs
    # on that environment's shard without first looking it up.
    environment_id: int | None = None
    channel: str = ""
    sub_kind: str = ""
    occurred_at: datetime | None = None
    notification_created_at: datetime | None = None
    provider_event_id: str = ""
    dedupe_key: str = ""
    detail: str = ""
    payload: Any = None
    delivery_fields: Mapping[str, Any] | None = None


def event_record(**spec: Any) -> RecordedEvent:
    """Record one event of a notification (the keywords of EventSpec), idempotently, and bring
    its delivery state and the notification's status up to date, in one transaction (the
    caller's, when it has one).

    The same event twice is recorded once; the second call returns `created=False` and
    changes nothing. Raises ValueError, before anything is written, on input that does not
    fit, and Notification.DoesNotExist when the notification is not (yet) known.
    """
    [outcome] = events_record([EventSpec(**spec)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def events_record(
    specs: Sequence[EventSpec],
) -> list[RecordedEvent | ValueError | Notification.DoesNotExist]:
    """Record several events in one transaction (the caller's, when it has one), in order:
    each as event_record would, seeing the ones before it. One outcome per spec, in order:
    its RecordedEvent, or the ValueError that says why it does not fit (nothing of it is
    written), or Notification.DoesNotExist when its notification is not (yet) known.

    The batch shares its reads: one statement locks every notification named (in id order,
    so two batches never deadlock), one reads their events and one their deliveries (on
    Citus, each of the three once per environment, naming it: logs.citus); then
    the events' writes go as one statement (a new one only where an event's notification
    already has writes waiting: PostgreSQL cannot write a row twice in one statement). A
    database error rolls the whole batch back."""
    now = timezone.now()
    outcomes: list = [None] * len(specs)
    keys: dict[int, str] = {}
    for index, spec in enumerate(specs):
        try:
            keys[index] = _spec_checked(spec, now)
        except ValueError as exc:
            outcomes[index] = exc
    if not keys:
        return outcomes
    shared_rows = SharedRowWrites()
    with transaction.atomic(), ExitStack() as stack:
        notifications = _notifications_lock([specs[index] for index in keys])
        recorded = _recorded_events(notifications.values())
        deliveries = _notification_deliveries(notifications.values())
        for notification in notifications.values():
            # The events folded into the notification and its deliveries, as facts: the
            # dedupe check and the status rules see them as they see rows.
            facts = recorded[notification.id]
            facts.extend(
                _RecordedFact.of(event, row=False)
                for event in synthesized(notification, deliveries[notification.id].values(), facts)
            )
        writes = _PendingWrites(stack, shared_rows)
        for index, key in keys.items():
            spec = specs[index]
            notification = notifications.get(spec.notification_id)
            if notification is None or not _created_at_fits(notification, spec):
                outcomes[index] = Notification.DoesNotExist(
                    f"Notification {spec.notification_id} is not known (yet)."
                )
                continue
            outcomes[index] = _event_apply(
                spec, key, notification, recorded[notification.id],
                deliveries[notification.id], now, writes,
            )  # fmt: skip
        writes.send()
        shared_rows.run()  # the counters, last and sorted (logs.statements.SharedRowWrites)
    return outcomes


class _PendingWrites:
    """The writes of a batch's events, waiting to go as one statement (a StatementBatch).
    Before an event of a notification that already has writes waiting, those are sent: one
    statement must not write a row twice (the notification's, its delivery's), and the
    event's lookups need the ids of the events before it."""

    def __init__(self, stack: ExitStack, shared_rows: SharedRowWrites):
        self.batch = StatementBatch(stack, shared_rows=shared_rows)
        self._notifications: set[uuid.UUID] = set()
        self._written: list = []

    def of(self, notification: Notification) -> StatementBatch:
        """The batch to add `notification`'s event's writes to."""
        if notification.id in self._notifications:
            self.send()
        self._notifications.add(notification.id)
        return self.batch

    def written(self, *instances) -> None:
        """Mark these saved once the batch is sent."""
        self._written.extend(instances)

    def send(self) -> None:
        self.batch.send()
        instances_written(*self._written)
        self._written.clear()
        self._notifications.clear()


# --- event_record's steps -----------------------------------------------------------------------


def _spec_checked(spec: EventSpec, now: datetime) -> str:
    """The spec's dedupe key, once it is checked to fit (ValueError says what to pass)."""
    _event_validate(
        kind=spec.kind,
        sub_kind=spec.sub_kind,
        channel=spec.channel,
        occurred_at=spec.occurred_at or now,
        notification_created_at=spec.notification_created_at,
        dedupe_key=spec.dedupe_key,
        delivery_fields=spec.delivery_fields or {},
    )
    return _dedupe_key_choose(
        spec.dedupe_key, spec.provider_event_id, kind=spec.kind, sub_kind=spec.sub_kind,
        channel=spec.channel, occurred_at=spec.occurred_at, source=spec.source,
        payload=spec.payload,
    )  # fmt: skip


def _event_apply(
    spec: EventSpec,
    dedupe_key: str,
    notification: Notification,
    recorded: list["_RecordedFact"],
    deliveries: dict[str, "Delivery"],
    now: datetime,
    writes: _PendingWrites,
) -> RecordedEvent:
    """One event, under its notification's lock, given what was recorded before it: found
    (the same event again) or written with what it decides."""
    channel = spec.channel
    batch = writes.of(notification)  # the notification's earlier events written first
    if (existing := _event_find(notification, recorded, deliveries, dedupe_key)) is not None:
        delivery = _delivery_upsert(notification, deliveries, channel, now) if channel else None
        return RecordedEvent(notification, delivery, existing, created=False)
    delivery = _delivery_of(notification, deliveries, channel, now) if channel else None
    event = _event_new(
        notification,
        delivery,
        kind=spec.kind,
        sub_kind=spec.sub_kind,
        channel=channel,
        occurred_at=spec.occurred_at or now,
        recorded_at=now,
        source=spec.source,
        dedupe_key=dedupe_key,
        detail=spec.detail,
        **payload_fields(source=spec.source, payload=_payload_storable(spec.payload)),
    )
    fields = spec.delivery_fields or {}
    fold = _fold_columns(spec, dedupe_key, delivery, fields, now) if delivery is not None else None
    stored = _event_write(
        event, notification, delivery, deliveries, recorded, fields, fold,
        _payload_storable(spec.payload), now, batch,
    )  # fmt: skip
    writes.written(*([event] if stored else []), *([delivery] if delivery is not None else []))
    return RecordedEvent(notification, delivery, event, created=True)


_ATTEMPT_1 = re.compile(r"Attempt 1 of ([1-9][0-9]{0,3}) via (.+)\.")


def _fold_columns(
    spec: EventSpec,
    dedupe_key: str,
    delivery: Delivery,
    fields: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any] | None:
    """The delivery columns that would stand for this event (logs/timeline.py), or None when
    it is not one of the pipeline's own events. Whether they re-derive it exactly is checked
    once the delivery's state is decided (_delivery_update); if not, the row is written."""
    if spec.occurred_at is not None or spec.sub_kind:
        return None  # a time of its own: recorded_at would differ from occurred_at
    channel = spec.channel
    if (
        spec.kind == EventKind.SENDING
        and spec.source == SOURCE_PIPELINE
        and dedupe_key == sending_key(channel)
        and delivery.sending_at is None
        and (attempt := _ATTEMPT_1.fullmatch(spec.detail))
    ):
        payload = spec.payload
        sender = payload.get("from") if isinstance(payload, dict) and len(payload) == 1 else None
        return {
            "sending_at": now,
            "send_max_attempts": int(attempt[1]),
            "sender": sender if isinstance(sender, str) else None,
        }
    if (
        spec.kind == EventKind.SENT
        and spec.source == SOURCE_PIPELINE
        and dedupe_key == sent_key(channel)
        and delivery.accepted_at is None
    ):
        return {"accepted_at": now}
    if (
        spec.kind == EventKind.DELIVERED
        and spec.source == SOURCE_IN_APP
        and channel == Channel.IN_APP
        and dedupe_key == IN_APP_DELIVERED_KEY
    ):
        return {}  # delivered_at, which the status rules set
    return None


def _event_validate(
    *,
    kind: str,
    sub_kind: str,
    channel: str,
    occurred_at: datetime,
    notification_created_at: datetime | None,
    dedupe_key: str,
    delivery_fields: Mapping[str, Any],
) -> None:
    """Refuse, before anything is written, what the log cannot hold, saying what to pass."""
    _delivery_fields_validate(delivery_fields, channel)
    # The kind, the sub-kind's kind and the time zone, as the status rules will need them.
    EventFact(kind=kind, sub_kind=sub_kind, occurred_at=occurred_at)
    if channel:
        _channel_fit_validate(kind, sub_kind, channel)
    else:
        _request_level_validate(kind, sub_kind)
    if notification_created_at is not None and notification_created_at.utcoffset() is None:
        raise ValueError(
            f"notification_created_at {notification_created_at!r} is naive: pass an aware "
            "datetime (e.g. datetime.fromtimestamp(epoch_ms / 1000, UTC))."
        )
    if len(dedupe_key) > _DEDUPE_KEY_MAX:
        raise ValueError(f"dedupe_key is longer than {_DEDUPE_KEY_MAX} characters.")


def _delivery_fields_validate(delivery_fields: Mapping[str, Any], channel: str) -> None:
    if unknown := set(delivery_fields) - DELIVERY_FIELDS:
        raise ValueError(
            f"event_record cannot set {', '.join(sorted(unknown))} on a delivery; allowed: "
            f"{', '.join(sorted(DELIVERY_FIELDS))}."
        )
    if delivery_fields and not channel:
        raise ValueError(
            "delivery_fields describe one channel's delivery and an event without a channel "
            "has none: pass channel=, or put the reason in detail=."
        )


def _channel_fit_validate(kind: str, sub_kind: str, channel: str) -> None:
    kind, sub_kind, channel = str(kind), str(sub_kind), str(channel)  # enum members print oddly
    if channel not in SUB_KINDS_BY_CHANNEL:
        raise ValueError(
            f"Unknown channel {channel!r}: use one of {_quoted(Channel.values)} "
            "(logs.vocabulary.Channel), or no channel for an outcome of the whole request."
        )
    if sub_kind and sub_kind not in SUB_KINDS_BY_CHANNEL[channel]:
        owners = [name for name, allowed in SUB_KINDS_BY_CHANNEL.items() if sub_kind in allowed]
        fitting = SUB_KINDS_BY_KIND.get(kind, frozenset()) & SUB_KINDS_BY_CHANNEL[channel]
        raise ValueError(
            f"Sub-kind {sub_kind!r} does not fit channel {channel!r}: it belongs to "
            f"{_quoted(owners)}. A {kind!r} event on {channel!r} takes "
            f"{_sub_kind_choices(fitting)} (logs.vocabulary.SUB_KINDS_BY_CHANNEL)."
        )


def _request_level_validate(kind: str, sub_kind: str) -> None:
    kind, sub_kind = str(kind), str(sub_kind)  # enum members print oddly
    if kind not in REQUEST_LEVEL_SUB_KINDS_BY_KIND:
        raise ValueError(
            f"A {kind!r} event belongs to a channel: pass channel= (one of "
            f"{_quoted(Channel.values)}). Only {_quoted(REQUEST_LEVEL_SUB_KINDS_BY_KIND)} may "
            "be recorded without one: they belong to the whole request."
        )
    allowed = REQUEST_LEVEL_SUB_KINDS_BY_KIND[kind]
    if sub_kind and sub_kind not in allowed:
        owners = [name for name, subs in SUB_KINDS_BY_CHANNEL.items() if sub_kind in subs]
        raise ValueError(
            f"Sub-kind {sub_kind!r} names what a channel's provider reported, so it needs "
            f"channel= ({_quoted(owners)}); a request-level {kind!r} event takes "
            f"{_sub_kind_choices(allowed)}."
        )


def _quoted(values: Any) -> str:
    return ", ".join(repr(str(value)) for value in values)


def _sub_kind_choices(sub_kinds: frozenset[str]) -> str:
    if not sub_kinds:
        return "no sub-kind (sub_kind='')"
    return f"no sub-kind or one of {_quoted(sorted(sub_kinds))}"


def _dedupe_key_fitted(key: str) -> str:
    if len(key) > _DEDUPE_KEY_MAX:
        # A long provider event id: its digest is just as unique and fits the column.
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _dedupe_key_choose(key: str, provider_event_id: str, *, source: str, **said: Any) -> str:
    """The caller's key, else the provider's event id, else a hash of what the event says."""
    # WORKAROUND: providers retry a callback with no event id and often no time of their own
    # (Twilio's SMS status callbacks): the hash covers the time only when the caller knows
    # it, so a retry recorded later hashes the same.
    return _dedupe_key_fitted(
        key
        or (f"{source}:{provider_event_id}" if provider_event_id else "")
        or event_dedupe_key(source=source, **said)
    )


def _event_write(
    event: Event,
    notification: Notification,
    delivery: Delivery | None,
    deliveries: dict[str, Delivery],
    recorded: list["_RecordedFact"],
    delivery_fields: Mapping[str, Any],
    fold: Mapping[str, Any] | None,
    payload: Any,
    now: datetime,
    writes: StatementBatch,
) -> bool:
    """Queue the event's insert (unless it is folded into its delivery, logs/timeline.py, and
    LOG_FOLD_PIPELINE_EVENTS keeps it there alone) and
    the saves of what its facts decide (the delivery's state and folded columns, the
    notification's status), with what the event_recorded receivers add, in the batch's
    `writes` (sent as one statement, planned once per connection:
    logs.statements.StatementBatch), inside the caller's transaction. Whether the event's row
    was written."""
    first_of_kind = not any(
        fact.kind == event.kind and fact.channel == event.channel for fact in recorded
    )
    position = len(recorded)
    recorded.append(_RecordedFact.of(event))  # its id once written (below)
    folded = False
    if delivery is not None:
        folded = _delivery_update(
            delivery, recorded, delivery_fields, now, writes,
            fold=(event, payload, fold, notification),
        )  # fmt: skip
    stored = not folded or not settings.LOG_FOLD_PIPELINE_EVENTS
    if stored:

        def written(id_: int) -> None:
            event.id = id_
            # With its id: a later event of the same batch that repeats it finds it.
            recorded[position] = _RecordedFact.of(event)

        writes.add(*insert_statement(event), on_value=written)
    else:
        # No row: its id (the stream's eventId) is drawn from the events' sequence all the
        # same, so ids stay unique and increasing; it names no row.
        recorded[position] = _RecordedFact.of(event, row=False)
        writes.add(_NEXT_EVENT_ID, [], on_value=lambda id_: setattr(event, "id", id_))
    _notification_recompute(notification, deliveries.values(), recorded, now, writes)
    event_recorded.send(
        Event,
        notification=notification,
        delivery=delivery,
        event=event,
        batch=writes,
        first_of_kind=first_of_kind,
    )
    return stored


_NEXT_EVENT_ID = "SELECT nextval(pg_get_serial_sequence('logs_event', 'id'))"


def _notifications_lock(specs: Sequence[EventSpec]) -> dict[uuid.UUID, Notification]:
    """Lock the notifications the specs name (FOR UPDATE, in id order), by id."""
    ids = sorted({spec.notification_id for spec in specs})
    created = [spec.notification_created_at for spec in specs]
    if settings.DATABASE_CITUS:
        # Without a delivery id drawn with the lock: a Sending draws its own (_delivery_of).
        return _notifications_lock_by_environment(specs, ids, created)
    # A Sending makes its channel's delivery (the first attempt's does): its id is drawn with
    # the lock, not in a round trip of its own (_delivery_of).
    sending = sorted({spec.notification_id for spec in specs if spec.kind == EventKind.SENDING})
    if None in created:
        found = _notifications("id = ANY(%s::uuid[]) ORDER BY id FOR UPDATE", [ids], sending)
    else:
        # The partition key lets PostgreSQL look in those days' partitions only. A caller
        # may know it to the millisecond only (truncated or rounded), so look within a
        # millisecond either side: the id decides which row, the time only prunes partitions
        # (and _created_at_fits checks it per spec).
        found = _notifications(
            "id = ANY(%s::uuid[]) AND created_at > %s AND created_at < %s ORDER BY id FOR UPDATE",
            [ids, min(created) - _CREATED_AT_PRECISION, max(created) + _CREATED_AT_PRECISION],
            sending,
        )
    return {notification.id: notification for notification in found}


def _notifications_lock_by_environment(
    specs: Sequence[EventSpec], ids: list[uuid.UUID], created: list
) -> dict[uuid.UUID, Notification]:
    """_notifications_lock on Citus, which takes FOR UPDATE only in a statement that runs on
    one shard: one statement per environment (in environment order, ids in order within,
    so two batches still never deadlock). Specs without their environment get it looked up
    first (a read of every shard)."""
    environments: dict[uuid.UUID, int] = {
        spec.notification_id: spec.environment_id for spec in specs if spec.environment_id
    }
    unknown = [notification_id for notification_id in ids if notification_id not in environments]
    if unknown:
        environments.update(
            prepared_rows(
                "SELECT id, environment_id FROM logs_notification WHERE id = ANY(%s::uuid[])",
                [unknown],
            )
        )
    by_environment: dict[int, list[uuid.UUID]] = {}
    for notification_id in ids:
        if notification_id in environments:
            by_environment.setdefault(environments[notification_id], []).append(notification_id)
    where = "environment_id = %s AND id = ANY(%s::uuid[])"
    if None not in created:
        where += " AND created_at > %s AND created_at < %s"
        span = [min(created) - _CREATED_AT_PRECISION, max(created) + _CREATED_AT_PRECISION]
    else:
        span = []
    found = {}
    for environment_id, notification_ids in sorted(by_environment.items()):
        params = [environment_id, notification_ids, *span]
        for notification in _notifications(f"{where} ORDER BY id FOR UPDATE", params, []):
            found[notification.id] = notification
    return found


def _created_at_fits(notification: Notification, spec: EventSpec) -> bool:
    if spec.notification_created_at is None:
        return True
    return abs(notification.created_at - spec.notification_created_at) < _CREATED_AT_PRECISION


# --- reads of the hot path: prepared statements ---------------------------------------------------
# event_record runs for every provider callback. Its three reads (the lock, the events, the
# deliveries) are the same statements every time: prepared once per connection, they skip
# both the ORM's query compilation and PostgreSQL's planning.

_SELECTS: dict[tuple, tuple[str, list[str]]] = {}


def _instances(model, where: str, params: list, **annotations: str) -> list:
    """Instances of `model` from `SELECT <its columns but _UNREAD's> FROM <its table> WHERE
    <where>`, with `annotations` (attribute name: SQL expression) set on each."""
    key = (model, where, tuple(annotations.items()))
    if key not in _SELECTS:
        meta = model._meta
        fields = [f for f in meta.concrete_fields if f.attname not in _UNREAD.get(model, ())]
        quote = connection.ops.quote_name
        columns = [quote(f.column) for f in fields] + list(annotations.values())
        sql = (
            f"SELECT {', '.join(columns)} "  # noqa: S608 (model metadata)
            f"FROM {quote(meta.db_table)} WHERE {where}"
        )
        _SELECTS[key] = (sql, [f.attname for f in fields])
    sql, attnames = _SELECTS[key]
    return prepared_instances(model, sql, params, attnames, annotations=list(annotations))


def _notifications(where: str, params: list, fresh_for: list[uuid.UUID]) -> list[Notification]:
    # The receivers need the request's templateId (insights' rollups), not the request: the
    # one value goes over the wire and is parsed, not the whole JSON. The notifications in
    # `fresh_for` get a delivery id drawn from its sequence (fresh_delivery_id), the others
    # (and every notification of a batch without them: the callbacks') none.
    if not fresh_for:
        return _instances(Notification, where, params, request_template_id=_TEMPLATE_ID)
    return _instances(
        Notification, where, [fresh_for, *params], request_template_id=_TEMPLATE_ID,
        fresh_delivery_id=_FRESH_DELIVERY_ID,
    )  # fmt: skip


_FRESH_DELIVERY_ID = (
    "CASE WHEN id = ANY(%s::uuid[]) THEN nextval(pg_get_serial_sequence('logs_delivery', 'id')) END"
)


_TEMPLATE_ID = (
    "CASE WHEN jsonb_typeof(request -> 'templateId') = 'string' "
    "THEN request ->> 'templateId' ELSE '' END"
)


@dataclass(frozen=True)
class _RecordedFact:
    """What the status rules and the dedupe check need of an event already recorded."""

    id: int | None
    kind: str
    sub_kind: str
    channel: str
    occurred_at: datetime
    dedupe_key: str
    # False: folded into the notification or its delivery, no row (logs/timeline.py).
    row: bool = True

    @classmethod
    def of(cls, event: Event, *, row: bool = True) -> "_RecordedFact":
        return cls(event.id, event.kind, event.sub_kind, event.channel, event.occurred_at,
                   event.dedupe_key, row)  # fmt: skip


# The child rows (events, deliveries) of a batch's notifications: by notification id, and
# their days' range, which prunes the partitions. By notification id and days only: the
# unique (notification_id, dedupe_key, ...) and (notification_id, channel, ...) indexes answer
# it. With environment_id too PostgreSQL may pick the (environment_id, kind, ...) index and
# walk every event of those days.
CHILDREN_OF = (
    "notification_id = ANY(%s::uuid[]) "
    "AND notification_created_at >= %s AND notification_created_at <= %s"
)
_RECORDED_EVENTS = (
    "SELECT notification_id, id, kind, sub_kind, channel, occurred_at, dedupe_key "
    "FROM logs_event WHERE "
)


def children_params(notifications: list[Notification]) -> list:
    created = [notification.created_at for notification in notifications]
    return [[notification.id for notification in notifications], min(created), max(created)]


# On Citus the same, naming the notifications' one environment: a router query of one shard
# (the shard's planner still has the notification_id indexes for the ids).
CHILDREN_OF_ENVIRONMENT = f"environment_id = %s AND {CHILDREN_OF}"


def children_of_environment_params(environment_id: int, notifications: list[Notification]):
    """CHILDREN_OF_ENVIRONMENT's parameters: the notifications are all of `environment_id`."""
    return [environment_id, *children_params(notifications)]


def children_reads(notifications: Iterable[Notification]) -> list[tuple[str, list]]:
    """How to read the child rows (events, deliveries) of `notifications`: [(the WHERE
    condition, its parameters)]. One statement for them all on plain PostgreSQL
    (CHILDREN_OF); one per environment on Citus (CHILDREN_OF_ENVIRONMENT)."""
    return [
        (CHILDREN_OF, children_params(group))
        if environment_id is None
        else (CHILDREN_OF_ENVIRONMENT, children_of_environment_params(environment_id, group))
        for environment_id, group in environment_groups(notifications, lambda n: n.environment_id)
    ]


def _recorded_events(
    notifications: Iterable[Notification],
) -> dict[uuid.UUID, list[_RecordedFact]]:
    """Every event of the notifications (a notification has a handful), in one query, read
    after the lock (a statement of its own, so it sees every event committed by whoever
    held it before)."""
    notifications = list(notifications)
    recorded: dict[uuid.UUID, list[_RecordedFact]] = {n.id: [] for n in notifications}
    if not notifications:
        return recorded
    for where, params in children_reads(notifications):
        for notification_id, *fact in prepared_rows(_RECORDED_EVENTS + where, params):
            recorded[notification_id].append(_RecordedFact(*fact))
    return recorded


def _notification_deliveries(
    notifications: Iterable[Notification],
) -> dict[uuid.UUID, dict[str, Delivery]]:
    """The notifications' deliveries by channel, in one query (as _recorded_events)."""
    notifications = list(notifications)
    deliveries: dict[uuid.UUID, dict[str, Delivery]] = {n.id: {} for n in notifications}
    if not notifications:
        return deliveries
    for where, params in children_reads(notifications):
        for delivery in _instances(Delivery, where, params):
            deliveries[delivery.notification_id][delivery.channel] = delivery
    return deliveries


def _event_find(
    notification: Notification,
    recorded: list[_RecordedFact],
    deliveries: dict[str, Delivery],
    dedupe_key: str,
) -> Event | None:
    found = next((fact for fact in recorded if fact.dedupe_key == dedupe_key), None)
    if found is None:
        return None
    if not found.row:
        # Folded: re-derived from the rows read (an unsaved Event, no id).
        rows = [fact for fact in recorded if fact.row]
        return next(
            event
            for event in synthesized(notification, deliveries.values(), rows)
            if event.dedupe_key == dedupe_key
        )
    return Event.objects.get(
        id=found.id,
        notification_created_at=notification.created_at,
        environment_id=notification.environment_id,
    )


def _delivery_upsert(
    notification: Notification, deliveries: dict[str, Delivery], channel: str, now: datetime
) -> Delivery:
    if channel not in deliveries:
        deliveries[channel], _ = Delivery.objects.get_or_create(
            environment_id=notification.environment_id,
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            channel=channel,
            defaults={"updated_at": now},
        )
    return deliveries[channel]


def _delivery_of(
    notification: Notification, deliveries: dict[str, Delivery], channel: str, now: datetime
) -> Delivery:
    """The channel's delivery: the one read, else a new one, inserted with the event that
    makes it (in its batch, with its state and content: one row version, where an empty
    INSERT then an UPDATE made two and wrote every index twice). Its id is drawn first, for
    the event's delivery_id. Under the notification's lock nobody else can be making it."""
    if channel not in deliveries:
        delivery_id = getattr(notification, "fresh_delivery_id", None)  # drawn with the lock
        if delivery_id is None:
            [(delivery_id,)] = prepared_rows(_NEXT_DELIVERY_ID, [])
        notification.fresh_delivery_id = None
        deliveries[channel] = Delivery(
            id=delivery_id,
            environment_id=notification.environment_id,
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            channel=channel,
            updated_at=now,
        )
    return deliveries[channel]


_NEXT_DELIVERY_ID = "SELECT nextval(pg_get_serial_sequence('logs_delivery', 'id'))"


def _event_new(notification: Notification, delivery: Delivery | None, **columns: Any) -> Event:
    return Event(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        environment_id=notification.environment_id,
        delivery=delivery,
        **columns,
    )


def _delivery_update(
    delivery: Delivery,
    recorded: list[_RecordedFact],
    fields: Mapping[str, Any],
    now: datetime,
    writes: StatementBatch,
    *,
    fold: tuple[Event, Any, Mapping[str, Any] | None, Notification],
) -> bool:
    """Set the caller's delivery fields and the state its events add up to; queue the save
    of what changed (nothing when nothing did: an Opened, a second Delivered). `fold`: the
    event (the last of `recorded`), its payload as stored, the columns that would stand for
    it (_fold_columns) and its notification. Whether the event is folded: the columns
    re-derive it exactly (logs/timeline.py). A folded event of the delivery that this one
    would make underivable (a later run's Sending naming another provider; a delivered_at
    cleared) is written out as a row first."""
    event, payload, fold_columns, notification = fold
    rows = [fact for fact in recorded[:-1] if fact.row]
    before = _folded_of(notification, delivery, rows)
    changed = {name for name, value in fields.items() if _differs(delivery, name, value)}
    for name in changed:
        setattr(delivery, name, fields[name])
    folded = False
    if fold_columns is not None:
        saved = {name: getattr(delivery, name) for name in fold_columns}
        for name, value in fold_columns.items():
            setattr(delivery, name, value)
    outcome = delivery_outcome(
        (
            EventFact(kind=e.kind, sub_kind=e.sub_kind, occurred_at=e.occurred_at, key=e.dedupe_key)
            for e in recorded
            if e.channel == delivery.channel
        ),
        reports_delivery=delivery.reports_delivery,
    )
    decided = (outcome.state, outcome.sub_kind, outcome.sent_at, outcome.delivered_at,
               outcome.failed_at)  # fmt: skip
    for name, value in zip(_DELIVERY_OUTCOME, decided, strict=True):
        if _differs(delivery, name, value):
            setattr(delivery, name, value)
            changed.add(name)
    after = _folded_of(notification, delivery, rows)
    if fold_columns is not None:
        derived = after.get(event.dedupe_key)
        folded = derived is not None and _same_event(derived, event, payload)
        for name, value in saved.items():
            if not folded:
                setattr(delivery, name, value)  # not exactly representable: a row, as ever
            elif _differs(delivery, name, value):
                changed.add(name)
        if not folded:  # the columns are back as they were: what they now derive
            after = _folded_of(notification, delivery, rows)
    for key, lost in before.items():
        if key not in after or not _same_event(after[key], lost, lost.payload):
            _folded_write_out(lost, recorded, writes)
    if delivery._state.adding:  # new (_delivery_of): inserted as it now stands
        delivery.updated_at = now
        writes.add(*insert_statement(delivery))
        return folded
    if not changed:
        return folded
    delivery.updated_at = now
    writes.add(*_update_statement(delivery, changed | {"updated_at"}, "notification_created_at"))
    return folded


def _folded_of(
    notification: Notification, delivery: Delivery, rows: list[_RecordedFact]
) -> dict[str, Event]:
    """The events folded into the delivery that no row stands for, by dedupe key."""
    return {
        event.dedupe_key: event for event in delivery_events_unstored(notification, delivery, rows)
    }


def _same_event(derived: Event, event: Event, payload: Any) -> bool:
    """Whether the derived event says exactly what `event` (with `payload`, as stored) says."""
    return (
        derived.kind, derived.sub_kind, derived.channel, derived.occurred_at,
        derived.recorded_at, derived.source, derived.dedupe_key, derived.detail, derived.payload,
    ) == (
        event.kind, event.sub_kind, event.channel, event.occurred_at, event.recorded_at,
        event.source, event.dedupe_key, event.detail, payload,
    )  # fmt: skip


def _folded_write_out(event: Event, recorded: list[_RecordedFact], writes: StatementBatch) -> None:
    """Write a folded event out as a row (rows win over the columns: logs/timeline.py)."""
    index = next(
        (i for i, fact in enumerate(recorded) if fact.dedupe_key == event.dedupe_key),
        len(recorded),
    )
    recorded[index : index + 1] = [_RecordedFact.of(event)]

    def written(id_: int) -> None:
        event.id = id_
        recorded[index] = _RecordedFact.of(event)

    writes.add(*insert_statement(event), on_value=written)


def _differs(instance: Delivery, name: str, value: Any) -> bool:
    """Whether setting `name` to `value` changes the row. A column not read (the content) is
    taken to change: the event that carries it is the one that writes it."""
    return name in _UNREAD[Delivery] or getattr(instance, name) != value


def _notification_recompute(
    notification: Notification,
    deliveries: Iterable[Delivery],
    recorded: list[_RecordedFact],
    now: datetime,
    writes: StatementBatch,
) -> None:
    """The status from every channel's state and every request-level outcome (the caller
    read both after taking the lock and has applied this event to them); queue its save."""
    states = [(delivery.state, delivery.reports_delivery) for delivery in deliveries]
    request_outcomes = [
        e.kind for e in recorded if not e.channel and e.kind in REQUEST_OUTCOME_KINDS
    ]
    status = notification_status(states, request_outcomes=request_outcomes)
    if status == notification.status:
        # Most events (Sending, Sent, Opened, a second channel's) change nothing here; an
        # update would still write a new row version and, the status being indexed, an entry
        # in every index of the row, the request's GIN index too. updated_at is when the
        # status last changed.
        return
    notification.status = status
    notification.updated_at = now
    writes.add(*_update_statement(notification, ("status", "updated_at"), "created_at"))


def _update_statement(
    instance: Delivery | Notification, names: Iterable[str], partition_key: str
) -> tuple[str, list]:
    """UPDATE of `names` of one row, as SQL and parameters for a StatementBatch. It names the
    partition key, so PostgreSQL touches one partition, not all, and the environment, so
    Citus runs it on one shard (a filter on the row the primary key finds, on plain
    PostgreSQL). The SQL and each column's preparer are built once per model and columns (as
    logs.statements.insert_statement's)."""
    key = (type(instance), frozenset(names), partition_key)
    shape = _UPDATE_SHAPES.get(key)
    if shape is None:
        meta, quote = type(instance)._meta, connection.ops.quote_name
        fields = [meta.get_field(name) for name in sorted(names)]  # sorted: the same SQL
        where = [meta.pk, meta.get_field(partition_key), meta.get_field("environment")]
        sql = (
            f"UPDATE {quote(meta.db_table)} SET "  # noqa: S608 (model metadata)
            f"{', '.join(f'{quote(field.column)} = %s' for field in fields)} "
            f"WHERE {' AND '.join(f'{quote(field.column)} = %s' for field in where)}"
        )
        shape = _UPDATE_SHAPES[key] = (sql, [field_preparer(f) for f in [*fields, *where]])
    sql, preparers = shape
    return sql, [prepare(instance) for prepare in preparers]


_UPDATE_SHAPES: dict[tuple, tuple[str, list]] = {}
