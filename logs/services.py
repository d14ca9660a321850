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
it.

This module holds the entry points and the batch's transaction (lock, read, apply each
event); the steps live beside it, each in a module named for its concern: logs.recording
(one event's steps, EventSpec, RecordedEvent), logs.event_validation (an event against the
vocabulary), logs.dedupe_keys, logs.recording_reads (what the writer reads) and
logs.status_updates (the delivery's and the notification's updates)."""

import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from logs.models import Event, Notification, merge_tags_stored
from logs.recording import (
    NEXT_EVENT_ID,
    EventSpec,
    PendingWrites,
    RecordedEvent,
    event_apply,
    spec_checked,
)
from logs.recording_reads import (
    RecordedFact,
    deliveries_by_channel,
    notifications_read,
    recorded_events,
)
from logs.signals import event_recorded
from logs.statements import (
    SharedRowWrites,
    StatementBatch,
    insert_statement,
    instances_written,
    prepared_rows,
)
from logs.timeline import SOURCE_API, received_event, synthesized
from logs.vocabulary import EventKind

# A notification's creation time as a caller may know it: epoch milliseconds (JavaScript's
# Date, most JSON APIs) lose the microseconds PostgreSQL keeps, truncated or rounded.
_CREATED_AT_PRECISION = timedelta(milliseconds=1)


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
            *(NEXT_EVENT_ID, []) if folded else insert_statement(received),
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
            keys[index] = spec_checked(spec, now)
        except ValueError as exc:
            outcomes[index] = exc
    if not keys:
        return outcomes
    shared_rows = SharedRowWrites()
    with transaction.atomic(), ExitStack() as stack:
        notifications = _notifications_lock([specs[index] for index in keys])
        recorded = recorded_events(notifications.values())
        deliveries = deliveries_by_channel(notifications.values())
        for notification in notifications.values():
            # The events folded into the notification and its deliveries, as facts: the
            # dedupe check and the status rules see them as they see rows.
            facts = recorded[notification.id]
            facts.extend(
                RecordedFact.of(event, row=False)
                for event in synthesized(notification, deliveries[notification.id].values(), facts)
            )
        writes = PendingWrites(stack, shared_rows)
        for index, key in keys.items():
            spec = specs[index]
            notification = notifications.get(spec.notification_id)
            if notification is None or not _created_at_fits(notification, spec):
                outcomes[index] = Notification.DoesNotExist(
                    f"Notification {spec.notification_id} is not known (yet)."
                )
                continue
            outcomes[index] = event_apply(
                spec, key, notification, recorded[notification.id],
                deliveries[notification.id], now, writes,
            )  # fmt: skip
        writes.send()
        shared_rows.run()  # the counters, last and sorted (logs.statements.SharedRowWrites)
    return outcomes


def _notifications_lock(specs: Sequence[EventSpec]) -> dict[uuid.UUID, Notification]:
    """Lock the notifications the specs name (FOR UPDATE, in id order), by id."""
    ids = sorted({spec.notification_id for spec in specs})
    created = [spec.notification_created_at for spec in specs]
    if settings.DATABASE_CITUS:
        # Without a delivery id drawn with the lock: a Sending draws its own (logs.recording).
        return _notifications_lock_by_environment(specs, ids, created)
    # A Sending makes its channel's delivery (the first attempt's does): its id is drawn with
    # the lock, not in a round trip of its own (logs.recording: a new delivery).
    sending = sorted({spec.notification_id for spec in specs if spec.kind == EventKind.SENDING})
    if None in created:
        found = notifications_read("id = ANY(%s::uuid[]) ORDER BY id FOR UPDATE", [ids], sending)
    else:
        # The partition key lets PostgreSQL look in those days' partitions only. A caller
        # may know it to the millisecond only (truncated or rounded), so look within a
        # millisecond either side: the id decides which row, the time only prunes partitions
        # (and _created_at_fits checks it per spec).
        found = notifications_read(
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
        for notification in notifications_read(f"{where} ORDER BY id FOR UPDATE", params, []):
            found[notification.id] = notification
    return found


def _created_at_fits(notification: Notification, spec: EventSpec) -> bool:
    if spec.notification_created_at is None:
        return True
    return abs(notification.created_at - spec.notification_created_at) < _CREATED_AT_PRECISION
