"""One event's recording, the steps of logs.services.event_record and events_record under
the notification's lock: what to record (EventSpec) and what came of it (RecordedEvent).
Check it and choose its dedupe key (spec_checked: logs.event_validation, logs.dedupe_keys);
find the same event already recorded; find or make the channel's delivery; write the event,
or fold it into its delivery's columns (logs/timeline.py); queue the delivery's and the
notification's updates (logs.status_updates) and what the event_recorded receivers add. A
batch's writes wait in PendingWrites, to go as one statement."""

import re
import uuid
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from logs.dedupe_keys import dedupe_key_choose, payload_storable
from logs.event_validation import event_validate
from logs.models import Delivery, Event, Notification
from logs.payloads import payload_fields
from logs.recording_reads import RecordedFact
from logs.signals import event_recorded
from logs.statements import (
    SharedRowWrites,
    StatementBatch,
    insert_statement,
    instances_written,
    prepared_rows,
)
from logs.status_updates import delivery_update, notification_recompute
from logs.timeline import (
    IN_APP_DELIVERED_KEY,
    SOURCE_IN_APP,
    SOURCE_PIPELINE,
    sending_key,
    sent_key,
    synthesized,
)
from logs.vocabulary import Channel, EventKind

# The delivery columns the send pipeline's own events are folded into (logs/timeline.py,
# docs/event-storage.md): set by the event they stand for, when it is exactly representable.
_FOLD_COLUMNS = ("sending_at", "accepted_at", "sender", "send_max_attempts")


@dataclass(frozen=True)
class EventSpec:
    """One event to record (event_record's arguments; events_record takes a list of them).

    `channel` is a logs.vocabulary.Channel value, and `sub_kind` must fit it
    (SUB_KINDS_BY_CHANNEL). Without a channel the event belongs to the whole request: its
    Received, or a request-level Failed (no sub-kind) or Ignored, which decides the status
    by itself (logs.status.notification_status). `notification_created_at`, when given,
    narrows the lookup to one day's partition; to the millisecond is precise enough. The
    same event twice (same provider event id, else same dedupe key, else same payload hash)
    is recorded once. `delivery_fields` sets logs.event_validation.DELIVERY_FIELDS on the
    channel's delivery."""

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


@dataclass(frozen=True)
class RecordedEvent:
    notification: Notification
    delivery: Delivery | None
    event: Event
    # False when the same event (same dedupe key) was already recorded: nothing changed.
    created: bool


class PendingWrites:
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


def spec_checked(spec: EventSpec, now: datetime) -> str:
    """The spec's dedupe key, once it is checked to fit (ValueError says what to pass)."""
    event_validate(
        kind=spec.kind,
        sub_kind=spec.sub_kind,
        channel=spec.channel,
        occurred_at=spec.occurred_at or now,
        notification_created_at=spec.notification_created_at,
        dedupe_key=spec.dedupe_key,
        delivery_fields=spec.delivery_fields or {},
    )
    return dedupe_key_choose(
        spec.dedupe_key, spec.provider_event_id, kind=spec.kind, sub_kind=spec.sub_kind,
        channel=spec.channel, occurred_at=spec.occurred_at, source=spec.source,
        payload=spec.payload,
    )  # fmt: skip


def event_apply(
    spec: EventSpec,
    dedupe_key: str,
    notification: Notification,
    recorded: list["RecordedFact"],
    deliveries: dict[str, "Delivery"],
    now: datetime,
    writes: PendingWrites,
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
        **payload_fields(source=spec.source, payload=payload_storable(spec.payload)),
    )
    fields = spec.delivery_fields or {}
    fold = _fold_columns(spec, dedupe_key, delivery, fields, now) if delivery is not None else None
    stored = _event_write(
        event, notification, delivery, deliveries, recorded, fields, fold,
        payload_storable(spec.payload), now, batch,
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
    once the delivery's state is decided (delivery_update); if not, the row is written."""
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


def _event_write(
    event: Event,
    notification: Notification,
    delivery: Delivery | None,
    deliveries: dict[str, Delivery],
    recorded: list["RecordedFact"],
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
    recorded.append(RecordedFact.of(event))  # its id once written (below)
    folded = False
    if delivery is not None:
        folded = delivery_update(
            delivery, recorded, delivery_fields, now, writes,
            fold=(event, payload, fold, notification),
        )  # fmt: skip
    stored = not folded or not settings.LOG_FOLD_PIPELINE_EVENTS
    if stored:

        def written(id_: int) -> None:
            event.id = id_
            # With its id: a later event of the same batch that repeats it finds it.
            recorded[position] = RecordedFact.of(event)

        writes.add(*insert_statement(event), on_value=written)
    else:
        # No row: its id (the stream's eventId) is drawn from the events' sequence all the
        # same, so ids stay unique and increasing; it names no row.
        recorded[position] = RecordedFact.of(event, row=False)
        writes.add(NEXT_EVENT_ID, [], on_value=lambda id_: setattr(event, "id", id_))
    notification_recompute(notification, deliveries.values(), recorded, now, writes)
    event_recorded.send(
        Event,
        notification=notification,
        delivery=delivery,
        event=event,
        batch=writes,
        first_of_kind=first_of_kind,
    )
    return stored


NEXT_EVENT_ID = "SELECT nextval(pg_get_serial_sequence('logs_event', 'id'))"


def _event_find(
    notification: Notification,
    recorded: list[RecordedFact],
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
