"""The send pipeline's own events folded into the delivery (docs/event-storage.md): the writer
fills the delivery's columns only when they re-derive the event field for field, and every
reader merges the rows with the events derived from them (logs.timeline), rows winning."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from logs.models import Delivery, Event, Notification
from logs.search_filters import NotificationFilters
from logs.selectors import notification_page, notification_timeline
from logs.services import event_record, notification_create
from logs.signals import event_recorded
from logs.timeline import timeline
from logs.vocabulary import Channel, EventKind
from tests.factories import EnvironmentFactory

FIELDS = (
    "kind", "sub_kind", "channel", "occurred_at", "recorded_at", "source", "dedupe_key",
    "detail", "payload", "delivery_id",
)  # fmt: skip


def _said(event: Event) -> tuple:
    return tuple(getattr(event, name) for name in FIELDS)


def _rows(notification: Notification):
    return Event.objects.filter(
        notification_id=notification.id, notification_created_at=notification.created_at
    )


def _delivery(notification: Notification, channel: str) -> Delivery:
    return Delivery.objects.get(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        channel=channel,
    )


def _record(notification, channel, kind, source, dedupe_key, detail, **spec):
    return event_record(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        environment_id=notification.environment_id,
        channel=channel,
        kind=kind,
        source=source,
        dedupe_key=dedupe_key,
        detail=detail,
        **spec,
    )


def _pipeline(notification, channel, *, provider="sandbox", payload=None, delivered=False):
    """What notifications/sending.py records for one channel sent at the first attempt."""
    common = {
        "notification_id": notification.id,
        "notification_created_at": notification.created_at,
        "environment_id": notification.environment_id,
        "channel": channel,
    }
    event_record(
        **common,
        kind=EventKind.SENDING,
        source="pipeline",
        dedupe_key=f"sending:{channel}:1",
        detail=f"Attempt 1 of 3 via {provider}.",
        delivery_fields={"provider": provider, "destination": "someone"},
        payload=payload,
    )
    event_record(
        **common,
        kind=EventKind.SENT,
        source="pipeline",
        dedupe_key=f"sent:{channel}",
        detail=f"Accepted by {provider}.",
        delivery_fields={"provider_message_id": f"m-{channel}", "reports_delivery": True},
    )
    if delivered:
        event_record(
            **common,
            kind=EventKind.DELIVERED,
            source="in_app",
            dedupe_key="in_app:delivered",
            detail="In the user's in-app feed.",
        )


def _notification(**spec) -> Notification:
    environment = EnvironmentFactory()
    return notification_create(
        environment_id=environment.id, notification_type="order_tracking", user_id="usr_1",
        **spec,
    )  # fmt: skip


@pytest.fixture
def notification(db):
    return _notification()


@pytest.mark.django_db
@override_settings(LOG_FOLD_PIPELINE_EVENTS=False)
def test_the_folded_events_re_derive_the_rows_field_for_field():
    # As a rolling upgrade writes them: the rows and the columns, to compare.
    notification = _notification()
    _pipeline(notification, Channel.EMAIL, payload={"from": "Shop <shop@example.com>"})
    _pipeline(notification, Channel.SMS, provider="twilio")
    _pipeline(notification, Channel.IN_APP, provider="in_app", delivered=True)
    rows = list(_rows(notification).order_by("id"))
    assert len(rows) == 1 + 2 + 2 + 3
    email = _delivery(notification, Channel.EMAIL)
    assert email.sender == "Shop <shop@example.com>" and email.send_max_attempts == 3
    assert email.sending_at is not None and email.accepted_at is not None
    assert _delivery(notification, Channel.SMS).sender is None
    deliveries = list(Delivery.objects.filter(notification_id=notification.id))
    # With no row at all, every one of them comes back from the notification and deliveries.
    derived = timeline(notification, deliveries, [])
    assert sorted(map(_said, derived)) == sorted(map(_said, rows))
    assert all(event.id is None for event in derived)
    # With the rows, the rows win: each line once, with its id.
    merged = notification_timeline(notification=notification)
    assert [event.id for event in merged] == [event.id for event in rows]


@pytest.mark.django_db
def test_an_event_the_columns_cannot_say_exactly_is_not_folded(notification):
    # An envelope with more than the sender: the Sending keeps its row alone.
    _pipeline(
        notification, Channel.EMAIL, payload={"from": "shop@example.com", "cc": ["a@example.com"]}
    )
    email = _delivery(notification, Channel.EMAIL)
    assert email.sending_at is None and email.sender is None
    assert email.accepted_at is not None  # the Sent is still exactly representable
    # A Sent at a time of its own (a provider's): recorded_at would differ, so a row alone.
    _record(
        notification, Channel.SMS, EventKind.SENT, "pipeline", "sent:sms", "Accepted by twilio.",
        occurred_at=timezone.now() - timedelta(seconds=5), delivery_fields={"provider": "twilio"},
    )  # fmt: skip
    assert _delivery(notification, Channel.SMS).accepted_at is None


@pytest.mark.django_db
def test_a_folded_event_dedupes_and_decides_the_state_without_its_row(notification):
    _pipeline(notification, Channel.IN_APP, provider="in_app", delivered=True)
    # The days after the rows stop being written: only the columns say it.
    _rows(notification).exclude(kind=EventKind.RECEIVED).delete()
    again = _record(
        notification, Channel.IN_APP, EventKind.SENT, "pipeline", "sent:in_app",
        "Accepted by in_app.",
    )  # fmt: skip
    assert again.created is False and again.event.id is None
    assert again.event.kind == EventKind.SENT and again.event.detail == "Accepted by in_app."
    delivery = _delivery(notification, Channel.IN_APP)
    assert delivery.state == "delivered"
    # A later permanent failure takes delivered_at back: the folded Delivered, which it
    # would make underivable, is written out as a row first.
    _record(notification, Channel.IN_APP, EventKind.FAILED, "in_app", "in_app:failed", "Gone.")
    assert _delivery(notification, Channel.IN_APP).delivered_at is None
    kinds = [event.kind for event in notification_timeline(notification=notification)]
    assert kinds == ["received", "sending", "sent", "delivered", "failed"]
    assert _rows(notification).filter(kind=EventKind.DELIVERED).count() == 1


@pytest.mark.django_db
def test_searches_find_the_folded_events_without_their_rows(notification):
    _pipeline(notification, Channel.EMAIL, payload={"from": "shop@example.com"})
    _pipeline(notification, Channel.IN_APP, provider="in_app", delivered=True)
    _rows(notification).delete()
    environment_id = notification.environment_id
    for kind in ("received", "sending", "sent", "delivered"):
        for channels in ((), ("email",), ("in_app",)):
            page = notification_page(
                environment_id=environment_id,
                filters=NotificationFilters(event_kind=kind, channels=channels),
            )
            expected = [] if (kind == "received" and channels) or (
                kind == "delivered" and channels == ("email",)
            ) else [notification.id]  # fmt: skip
            assert [n.id for n in page.notifications] == expected, (kind, channels)


@pytest.mark.django_db
def test_the_folded_events_write_no_row_and_still_reach_the_receivers(notification):
    ids = []

    def receiver(sender, *, event, batch=None, **kwargs):
        batch.transaction()  # as the stream's receiver does, for the event's id
        ids.append((event.kind, event.id, event._state.adding))

    event_recorded.connect(receiver, dispatch_uid="test.timeline")
    try:
        _pipeline(notification, Channel.IN_APP, provider="in_app", delivered=True)
    finally:
        event_recorded.disconnect(dispatch_uid="test.timeline")
    assert not _rows(notification).exists()
    labels = [event.label for event in notification_timeline(notification=notification)]
    assert labels == ["Received", "Sending", "Sent", "Delivered"]
    # Unsaved, with an id drawn from the events' sequence (the stream's eventId).
    assert [kind for kind, _, _ in ids] == ["sending", "sent", "delivered"]
    assert all(adding for _, _, adding in ids)
    drawn = [id_ for _, id_, _ in ids]
    assert drawn == sorted(drawn) and len(set(drawn)) == 3 and None not in drawn
    assert _delivery(notification, Channel.IN_APP).state == "delivered"
    # A Received from elsewhere than the API is not the one the columns say: its row.
    other = _notification(source="console")
    assert [e.source for e in _rows(other)] == ["console"]
    assert [e.source for e in notification_timeline(notification=other)] == ["console"]
