"""Writes to the log. One action per state change: the event row, the delivery state and the
notification status change together, in one transaction, under a row lock on the
notification, so two workers recording events of one notification at once cannot lose an
update (each recomputes from every event, after the other's commit)."""

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from logs.models import Delivery, Event, Notification
from logs.status import EventFact, delivery_outcome, notification_status
from logs.vocabulary import EventKind

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
        "error_code",
        "error_message",
    }
)


_DEDUPE_KEY_MAX = Event._meta.get_field("dedupe_key").max_length
_DELIVERY_SAVED = DELIVERY_FIELDS | {
    "state",
    "state_detail",
    "sent_at",
    "delivered_at",
    "failed_at",
    "updated_at",
}


@dataclass(frozen=True)
class RecordedEvent:
    notification: Notification
    delivery: Delivery | None
    event: Event
    # False when the same event (same dedupe key) was already recorded: nothing changed.
    created: bool


def event_dedupe_key(
    *,
    kind: str,
    sub_kind: str,
    channel: str,
    occurred_at: datetime | None,
    source: str,
    payload: Any,
) -> str:
    """A stable key for an event the provider gave no id for: a hash of what it says."""
    canonical = json.dumps(
        [
            kind,
            sub_kind,
            channel,
            occurred_at.isoformat() if occurred_at else None,
            source,
            payload,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


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
) -> Notification:
    """Write a notification and its Received event together. `number` must already be E.164
    (logs.phone.phone_normalize)."""
    created_at = created_at or timezone.now()
    with transaction.atomic():
        notification = Notification.objects.create(
            id=uuid.uuid4(),
            environment_id=environment_id,
            notification_type=notification_type,
            user_id=user_id,
            email=email,
            number=number,
            timezone=timezone_name,
            merge_tags=dict(merge_tags or {}),
            request=dict(request or {}),
            created_at=created_at,
            updated_at=created_at,
        )
        Event.objects.create(
            notification=notification,
            notification_created_at=created_at,
            environment_id=environment_id,
            kind=EventKind.RECEIVED,
            occurred_at=created_at,
            recorded_at=created_at,
            source=source,
            dedupe_key="received",
            detail="The request was accepted.",
        )
    return notification


def _lock_notification(notification_id: uuid.UUID, created_at: datetime | None) -> Notification:
    queryset = Notification.objects.select_for_update().filter(id=notification_id)
    if created_at is not None:
        # The partition key: lets PostgreSQL look in one day's partition only.
        queryset = queryset.filter(created_at=created_at)
    return queryset.get()


def _delivery_refresh(delivery: Delivery, now: datetime) -> None:
    events = Event.objects.filter(
        notification_id=delivery.notification_id,
        notification_created_at=delivery.notification_created_at,
        channel=delivery.channel,
    ).values_list("kind", "sub_kind", "occurred_at", "dedupe_key")
    outcome = delivery_outcome(
        (EventFact(kind=k, sub_kind=s, occurred_at=t, key=d) for k, s, t, d in events),
        reports_delivery=delivery.reports_delivery,
    )
    delivery.state = outcome.state
    delivery.state_detail = outcome.sub_kind
    delivery.sent_at = outcome.sent_at
    delivery.delivered_at = outcome.delivered_at
    delivery.failed_at = outcome.failed_at
    delivery.updated_at = now


def event_record(
    *,
    notification_id: uuid.UUID,
    kind: str,
    source: str,
    channel: str = "",
    sub_kind: str = "",
    occurred_at: datetime | None = None,
    notification_created_at: datetime | None = None,
    provider_event_id: str = "",
    dedupe_key: str = "",
    detail: str = "",
    payload: Any = None,
    delivery_fields: Mapping[str, Any] | None = None,
) -> RecordedEvent:
    """Record one event of a notification, idempotently, and bring its delivery state and
    the notification's status up to date.

    The same event twice (same provider event id, else same dedupe key, else same payload
    hash) is recorded once; the second call returns `created=False` and changes nothing.
    Raises Notification.DoesNotExist when the notification is not (yet) known.
    """
    unknown = set(delivery_fields or {}) - DELIVERY_FIELDS
    if unknown:
        raise ValueError(
            f"event_record cannot set {', '.join(sorted(unknown))} on a delivery; allowed: "
            f"{', '.join(sorted(DELIVERY_FIELDS))}."
        )
    if kind != EventKind.RECEIVED and not channel:
        raise ValueError(f"A {kind!r} event belongs to a channel: pass channel=.")
    if len(dedupe_key) > _DEDUPE_KEY_MAX:
        raise ValueError(f"dedupe_key is longer than {_DEDUPE_KEY_MAX} characters.")
    now = timezone.now()
    # WORKAROUND: providers retry a callback with no event id and often no time of their own
    # (Twilio's SMS status callbacks): the hash covers the time only when the caller knows
    # it, so a retry recorded later hashes the same.
    dedupe_key = (
        dedupe_key
        or (f"{source}:{provider_event_id}" if provider_event_id else "")
        or event_dedupe_key(
            kind=kind,
            sub_kind=sub_kind,
            channel=channel,
            occurred_at=occurred_at,
            source=source,
            payload=payload,
        )
    )
    if len(dedupe_key) > _DEDUPE_KEY_MAX:
        # A long provider event id: its digest is just as unique and fits the column.
        dedupe_key = "sha256:" + hashlib.sha256(dedupe_key.encode()).hexdigest()
    occurred_at = occurred_at or now
    # Validates kind/sub-kind pairs and the time zone before anything is written.
    EventFact(kind=kind, sub_kind=sub_kind, occurred_at=occurred_at)

    with transaction.atomic():
        notification = _lock_notification(notification_id, notification_created_at)
        existing = Event.objects.filter(
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            dedupe_key=dedupe_key,
        ).first()
        delivery = None
        if channel:
            delivery, _ = Delivery.objects.get_or_create(
                notification_id=notification.id,
                notification_created_at=notification.created_at,
                channel=channel,
                defaults={"environment_id": notification.environment_id, "updated_at": now},
            )
        if existing is not None:
            return RecordedEvent(notification, delivery, existing, created=False)

        event = Event.objects.create(
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            delivery=delivery,
            environment_id=notification.environment_id,
            kind=kind,
            sub_kind=sub_kind,
            channel=channel,
            occurred_at=occurred_at,
            recorded_at=now,
            source=source,
            provider_event_id=provider_event_id,
            dedupe_key=dedupe_key,
            detail=detail,
            payload=payload,
        )
        if delivery is not None:
            for name, value in (delivery_fields or {}).items():
                setattr(delivery, name, value)
            _delivery_refresh(delivery, now)
            # Updates name the partition key so PostgreSQL touches one partition, not all.
            Delivery.objects.filter(
                id=delivery.id, notification_created_at=delivery.notification_created_at
            ).update(**{name: getattr(delivery, name) for name in _DELIVERY_SAVED})

        states = Delivery.objects.filter(
            notification_id=notification.id, notification_created_at=notification.created_at
        ).values_list("state", "reports_delivery")
        notification.status = notification_status(states)
        notification.updated_at = now
        Notification.objects.filter(id=notification.id, created_at=notification.created_at).update(
            status=notification.status, updated_at=now
        )
    return RecordedEvent(notification, delivery, event, created=True)
