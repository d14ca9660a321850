"""What a recorded event (logs.recording) changes on its delivery and its notification: the
delivery columns the caller sets, the state the delivery's events add up to and the columns
a pipeline event is folded into (delivery_update), and the notification's status
(notification_recompute). logs.status holds the rules; this queues the writes of what
changed, and nothing when nothing did (every write of a log row is a new row version:
logs.services)."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from logs.models import Delivery, Event, Notification
from logs.recording_reads import UNREAD, RecordedFact
from logs.statements import StatementBatch, insert_statement, update_statement
from logs.status import EventFact, delivery_outcome, notification_status
from logs.timeline import delivery_events_unstored
from logs.vocabulary import REQUEST_OUTCOME_KINDS

# What the status rules decide on a delivery: saved when it changes.
_DELIVERY_OUTCOME = ("state", "state_detail", "sent_at", "delivered_at", "failed_at")


def delivery_update(
    delivery: Delivery,
    recorded: list[RecordedFact],
    fields: Mapping[str, Any],
    now: datetime,
    writes: StatementBatch,
    *,
    fold: tuple[Event, Any, Mapping[str, Any] | None, Notification],
) -> bool:
    """Set the caller's delivery fields and the state its events add up to; queue the save
    of what changed (nothing when nothing did: an Opened, a second Delivered). `fold`: the
    event (the last of `recorded`), its payload as stored, the columns that would stand for
    it (logs.recording) and its notification. Whether the event is folded: the columns
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
    if delivery._state.adding:  # new (logs.recording): inserted as it now stands
        delivery.updated_at = now
        writes.add(*insert_statement(delivery))
        return folded
    if not changed:
        return folded
    delivery.updated_at = now
    writes.add(*update_statement(delivery, changed | {"updated_at"}, "notification_created_at"))
    return folded


def _folded_of(
    notification: Notification, delivery: Delivery, rows: list[RecordedFact]
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


def _folded_write_out(event: Event, recorded: list[RecordedFact], writes: StatementBatch) -> None:
    """Write a folded event out as a row (rows win over the columns: logs/timeline.py)."""
    index = next(
        (i for i, fact in enumerate(recorded) if fact.dedupe_key == event.dedupe_key),
        len(recorded),
    )
    recorded[index : index + 1] = [RecordedFact.of(event)]

    def written(id_: int) -> None:
        event.id = id_
        recorded[index] = RecordedFact.of(event)

    writes.add(*insert_statement(event), on_value=written)


def _differs(instance: Delivery, name: str, value: Any) -> bool:
    """Whether setting `name` to `value` changes the row. A column not read (the content) is
    taken to change: the event that carries it is the one that writes it."""
    return name in UNREAD[Delivery] or getattr(instance, name) != value


def notification_recompute(
    notification: Notification,
    deliveries: Iterable[Delivery],
    recorded: list[RecordedFact],
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
    writes.add(*update_statement(notification, ("status", "updated_at"), "created_at"))
