import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from logs.models import Delivery, Event, Notification
from logs.services import event_record, notification_create
from tests.factories import EnvironmentFactory

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _notification(**kwargs):
    environment = kwargs.pop("environment", None) or EnvironmentFactory()
    return notification_create(
        environment_id=environment.id,
        notification_type="order_tracking",
        user_id="usr_1",
        email="Ada@Example.com",
        created_at=kwargs.pop("created_at", T0),
        **kwargs,
    )


def _refetch(notification):
    return Notification.objects.get(id=notification.id)


@pytest.mark.django_db
def test_notification_create_writes_the_received_event():
    notification = _notification()
    events = list(Event.objects.filter(notification_id=notification.id))
    assert [(e.kind, e.label) for e in events] == [("received", "Received")]
    assert _refetch(notification).status == "received"


@pytest.mark.django_db
def test_sent_then_delivered_marks_success_with_times():
    notification = _notification()
    event_record(
        notification_id=notification.id, kind="sent", channel="email", source="sandbox",
        occurred_at=T0 + timedelta(seconds=1),
        delivery_fields={"provider": "sandbox", "provider_message_id": "m-1"},
    )  # fmt: skip
    result = event_record(
        notification_id=notification.id, kind="delivered", channel="email",
        source="sandbox", occurred_at=T0 + timedelta(seconds=5),
    )  # fmt: skip
    assert result.created
    delivery = Delivery.objects.get(notification_id=notification.id)
    assert delivery.state == "delivered"
    assert delivery.provider_message_id == "m-1"
    assert delivery.sent_at == T0 + timedelta(seconds=1)
    assert delivery.delivered_at == T0 + timedelta(seconds=5)
    assert _refetch(notification).status == "success"


@pytest.mark.django_db
def test_bounce_after_delivery_marks_failure():
    notification = _notification()
    for kind, sub_kind, seconds in [
        ("sent", "", 1),
        ("delivered", "", 2),
        ("failed", "bounce", 60),
    ]:
        event_record(
            notification_id=notification.id, kind=kind, sub_kind=sub_kind, channel="email",
            source="amazon_ses", occurred_at=T0 + timedelta(seconds=seconds),
        )  # fmt: skip
    delivery = Delivery.objects.get(notification_id=notification.id)
    assert (delivery.state, delivery.get_state_detail_display()) == ("failed", "Failed - Bounce")
    assert _refetch(notification).status == "failure"


@pytest.mark.django_db
def test_out_of_order_callbacks_give_the_same_state():
    first, second = _notification(), _notification()
    events = [("sent", "", 1), ("failed", "delivery_delay", 30), ("delivered", "", 90)]
    for notification, order in [(first, events), (second, list(reversed(events)))]:
        for kind, sub_kind, seconds in order:
            event_record(
                notification_id=notification.id, kind=kind, sub_kind=sub_kind,
                channel="email", source="amazon_ses", occurred_at=T0 + timedelta(seconds=seconds),
            )  # fmt: skip
    states = [
        Delivery.objects.values_list("state", "state_detail").get(notification_id=n.id)
        for n in (first, second)
    ]
    assert states == [("delivered", ""), ("delivered", "")]
    assert {_refetch(first).status, _refetch(second).status} == {"success"}


@pytest.mark.django_db
def test_same_provider_event_twice_is_recorded_once():
    notification = _notification()
    kwargs = dict(
        notification_id=notification.id, kind="delivered", channel="sms", source="twilio",
        provider_event_id="SM123:delivered", occurred_at=T0 + timedelta(seconds=3),
    )  # fmt: skip
    assert event_record(**kwargs).created
    again = event_record(**kwargs)
    assert not again.created
    assert Event.objects.filter(notification_id=notification.id, channel="sms").count() == 1


@pytest.mark.django_db
def test_same_payload_without_event_id_is_recorded_once():
    notification = _notification()
    kwargs = dict(
        notification_id=notification.id, kind="sent", channel="sms", source="twilio",
        occurred_at=T0, payload={"MessageSid": "SM1", "MessageStatus": "sent"},
    )  # fmt: skip
    event_record(**kwargs)
    event_record(**kwargs)
    assert Event.objects.filter(notification_id=notification.id, kind="sent").count() == 1


@pytest.mark.django_db
def test_engagement_does_not_change_status():
    notification = _notification()
    event_record(notification_id=notification.id, kind="delivered", channel="email", source="x")
    event_record(
        notification_id=notification.id, kind="engagement", sub_kind="complained",
        channel="email", source="x",
    )  # fmt: skip
    assert Delivery.objects.get(notification_id=notification.id).state == "delivered"
    assert _refetch(notification).status == "success"


@pytest.mark.django_db
def test_one_failed_channel_fails_the_notification_and_ignored_ones_do_not_count():
    notification = _notification()
    event_record(
        notification_id=notification.id, kind="ignored", sub_kind="user_preference",
        channel="sms", source="pipeline",
    )  # fmt: skip
    event_record(notification_id=notification.id, kind="delivered", channel="email", source="x")
    assert _refetch(notification).status == "success"
    event_record(
        notification_id=notification.id, kind="failed", sub_kind="cannot_reach",
        channel="call", source="twilio",
    )  # fmt: skip
    assert _refetch(notification).status == "failure"


@pytest.mark.django_db
def test_bad_input_raises_a_clear_error_and_writes_nothing():
    notification = _notification()
    before = Event.objects.count()
    with pytest.raises(ValueError, match="does not belong to kind"):
        event_record(
            notification_id=notification.id, kind="delivered", sub_kind="bounce",
            channel="email", source="x",
        )  # fmt: skip
    with pytest.raises(ValueError, match="pass channel="):
        event_record(notification_id=notification.id, kind="sent", source="x")
    with pytest.raises(ValueError, match="cannot set"):
        event_record(
            notification_id=notification.id, kind="sent", channel="email", source="x",
            delivery_fields={"state": "delivered"},
        )  # fmt: skip
    assert Event.objects.count() == before
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_unknown_notification_raises_does_not_exist():
    import uuid

    with pytest.raises(Notification.DoesNotExist):
        event_record(notification_id=uuid.uuid4(), kind="sent", channel="sms", source="twilio")


def _record_in_thread(errors, **kwargs):
    try:
        event_record(**kwargs)
    except Exception as exc:  # reported to the test thread
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_events_of_one_notification_lose_no_update():
    """Two connections record the last event of two channels at once. Without the row lock
    each would compute the status from the other's uncommitted state and both would leave
    it "received"; with it, the second waits for the first and sees its delivery."""
    notification = _notification()
    for channel in ("email", "sms"):
        event_record(notification_id=notification.id, kind="sent", channel=channel, source="x")

    holding = threading.Event()
    release = threading.Event()
    errors: list[Exception] = []

    def first():
        try:
            with transaction.atomic():
                event_record(
                    notification_id=notification.id, kind="delivered", channel="email",
                    source="x",
                )  # fmt: skip
                holding.set()
                release.wait(timeout=10)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    second_done = threading.Event()

    def second():
        holding.wait(timeout=10)
        _record_in_thread(
            errors, notification_id=notification.id, kind="delivered", channel="sms", source="x"
        )
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    holding.wait(timeout=10)
    # The second recorder is blocked on the notification's row lock while the first holds it.
    assert not second_done.wait(timeout=1.0)
    release.set()
    for thread in threads:
        thread.join(timeout=20)
    assert not errors
    assert _refetch(notification).status == "success"
    assert set(Delivery.objects.values_list("state", flat=True)) == {"delivered"}


@pytest.mark.django_db(transaction=True)
def test_many_concurrent_recorders_end_consistent():
    notifications = [_notification() for _ in range(10)]
    channels = ["email", "sms", "call"]
    for notification in notifications:
        for channel in channels:
            event_record(notification_id=notification.id, kind="sent", channel=channel, source="x")
    errors: list[Exception] = []
    threads = [
        threading.Thread(
            target=_record_in_thread,
            args=(errors,),
            kwargs=dict(
                notification_id=n.id,
                kind="delivered",
                channel=channel,
                source="x",
                provider_event_id=f"{n.id}:{channel}",
            ),
        )
        for n in notifications
        for channel in channels
        for _ in range(2)  # each callback delivered twice, as providers do
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert set(Notification.objects.values_list("status", flat=True)) == {"success"}
    assert Event.objects.filter(kind="delivered").count() == len(notifications) * len(channels)


@pytest.mark.django_db
def test_a_retried_callback_without_id_or_time_is_recorded_once():
    """Twilio's SMS status callbacks carry neither an event id nor a time: the retry a
    minute later is the same event."""
    import time_machine

    notification = _notification()
    kwargs = dict(
        notification_id=notification.id, kind="delivered", channel="sms", source="twilio",
        payload={"MessageSid": "SM9", "MessageStatus": "delivered"},
    )  # fmt: skip
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        assert event_record(**kwargs).created
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        assert not event_record(**kwargs).created
    assert Event.objects.filter(notification_id=notification.id, kind="delivered").count() == 1


@pytest.mark.django_db
def test_a_very_long_provider_event_id_is_recorded_and_still_deduplicated():
    notification = _notification()
    kwargs = dict(
        notification_id=notification.id, kind="sent", channel="email", source="sendgrid",
        provider_event_id="x" * 400,
    )  # fmt: skip
    assert event_record(**kwargs).created
    assert not event_record(**kwargs).created
    with pytest.raises(ValueError, match="longer than 255"):
        event_record(**kwargs, dedupe_key="k" * 300)
