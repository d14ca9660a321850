"""A notification's timeline: its event rows merged with the send pipeline's own events, which
are folded into the notification and delivery rows instead of stored (docs/event-storage.md).

Pure functions over model instances already read: no database. Four kinds of event are
re-derived field for field:

- every Received, from the notification (its creation time; source "api");
- the first attempt's Sending, from the delivery's `sending_at`, `provider`,
  `send_max_attempts` and, for an email, `sender` (the envelope when it held `from` alone);
- the pipeline's Sent, from `accepted_at` and `provider`;
- the in-app provider's Delivered (the item stored in the feed), from an in-app delivery's
  `delivered_at` when no Delivered row of the channel exists.

A row with the same dedupe key as a synthesized event wins: the days written before the
columns existed (and while writers still wrote both) have rows, and a writer that cannot fold
an event exactly writes its row (logs.services). Synthesized events have no id (None)."""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from logs.models import Delivery, Event, Notification
from logs.status import event_sort_key_parts
from logs.vocabulary import Channel, EventKind

SOURCE_API = "api"
SOURCE_PIPELINE = "pipeline"
SOURCE_IN_APP = "in_app"

RECEIVED_KEY = "received"
RECEIVED_DETAIL = "The request was accepted."
IN_APP_DELIVERED_KEY = "in_app:delivered"
IN_APP_DELIVERED_DETAIL = "In the user's in-app feed."


def sending_key(channel: str) -> str:
    """The first attempt's Sending's dedupe key (notifications/sending.py writes it so)."""
    return f"sending:{channel}:1"


def sent_key(channel: str) -> str:
    return f"sent:{channel}"


def sending_detail(provider: str, max_attempts: int) -> str:
    return f"Attempt 1 of {max_attempts} via {provider}."


def sent_detail(provider: str) -> str:
    return f"Accepted by {provider}."


def received_event(notification: Notification, *, make: Callable | None = None) -> Event:
    """The notification's Received, as notification_create would have written it."""
    return _event(
        make,
        notification,
        None,
        kind=EventKind.RECEIVED,
        channel="",
        occurred_at=notification.created_at,
        source=SOURCE_API,
        dedupe_key=RECEIVED_KEY,
        detail=RECEIVED_DETAIL,
    )


def delivery_events(
    notification: Notification,
    delivery: Delivery,
    *,
    delivered_rows: bool = False,
    make: Callable | None = None,
) -> list[Event]:
    """The events folded into `delivery` (none when its columns are empty). `delivered_rows`:
    the channel has a Delivered row (then an in-app `delivered_at` is that row's, not the
    folded Delivered's). `make`: what builds each event from its columns (keywords), an
    unsaved Event by default; `delivery` then needs only the attributes read here."""
    channel = delivery.channel
    folded = []  # (kind, time, source, dedupe key, detail, payload)
    if delivery.sending_at is not None and delivery.send_max_attempts is not None:
        sender = delivery.sender
        folded.append((
            EventKind.SENDING, delivery.sending_at, SOURCE_PIPELINE, sending_key(channel),
            sending_detail(delivery.provider, delivery.send_max_attempts),
            {"from": sender} if sender is not None else None,
        ))  # fmt: skip
    if delivery.accepted_at is not None:
        folded.append((
            EventKind.SENT, delivery.accepted_at, SOURCE_PIPELINE, sent_key(channel),
            sent_detail(delivery.provider), None,
        ))  # fmt: skip
    if channel == Channel.IN_APP and delivery.delivered_at is not None and not delivered_rows:
        folded.append((
            EventKind.DELIVERED, delivery.delivered_at, SOURCE_IN_APP, IN_APP_DELIVERED_KEY,
            IN_APP_DELIVERED_DETAIL, None,
        ))  # fmt: skip
    return [
        _event(make, notification, delivery, kind=kind, channel=channel, occurred_at=moment,
               source=source, dedupe_key=key, detail=detail, payload=payload)
        for kind, moment, source, key, detail, payload in folded
    ]  # fmt: skip


def synthesized(
    notification: Notification,
    deliveries: Iterable[Delivery],
    rows: Iterable[Any],
    *,
    make: Callable | None = None,
) -> list[Event]:
    """The folded events of the notification that no row stands for. `rows` need `kind`,
    `channel` and `dedupe_key` (Event instances, or the facts logs.services reads)."""
    rows = list(rows)
    stored = any(row.dedupe_key == RECEIVED_KEY for row in rows)
    events = [] if stored else [received_event(notification, make=make)]
    for delivery in deliveries:
        events.extend(delivery_events_unstored(notification, delivery, rows, make=make))
    return events


def delivery_events_unstored(
    notification: Notification,
    delivery: Delivery,
    rows: Iterable[Any],
    *,
    make: Callable | None = None,
) -> list[Event]:
    """The events folded into `delivery` that no row of `rows` (the notification's, each with
    `kind`, `channel` and `dedupe_key`) stands for."""
    rows = list(rows)
    keys = {row.dedupe_key for row in rows}
    delivered_rows = any(
        row.kind == EventKind.DELIVERED and row.channel == delivery.channel for row in rows
    )
    return [
        event
        for event in delivery_events(
            notification, delivery, delivered_rows=delivered_rows, make=make
        )
        if event.dedupe_key not in keys
    ]


def timeline(
    notification: Notification,
    deliveries: Iterable[Delivery],
    rows: Iterable[Event],
    *,
    make: Callable | None = None,
) -> list[Event]:
    """The notification's events in the order they happened: its rows and the events folded
    into it (rows win over a folded event with the same dedupe key), by time, then kind in
    the order a delivery moves through (logs.status), then sub-kind; rows by id, after the
    folded events of the same instant and kind."""
    rows = list(rows)
    merged = rows + synthesized(notification, deliveries, rows, make=make)
    return sorted(merged, key=timeline_sort_key)


def timeline_sort_key(event: Event) -> tuple:
    return (
        *event_sort_key_parts(event.occurred_at, event.kind, event.sub_kind),
        event.id is not None,
        event.id or 0,
    )


def _event(
    make: Callable | None,
    notification: Notification,
    delivery: Delivery | None,
    *,
    kind: str,
    channel: str,
    occurred_at: datetime,
    source: str,
    dedupe_key: str,
    detail: str,
    payload: Any = None,
) -> Event:
    columns = {
        "kind": kind,
        "sub_kind": "",
        "channel": channel,
        "occurred_at": occurred_at,
        "recorded_at": occurred_at,
        "source": source,
        "dedupe_key": dedupe_key,
        "detail": detail,
        "payload": payload,
    }
    if make is not None:
        return make(**columns)
    return Event(
        id=None,
        notification=notification,
        notification_created_at=notification.created_at,
        delivery=delivery,
        environment_id=notification.environment_id,
        provider_event_id="",
        **columns,
    )
