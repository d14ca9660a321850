import re
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone as django_timezone

from logs.models import Delivery, Event, Notification
from logs.partitions import partition_name
from logs.recording import EventSpec
from logs.selectors import notification_timeline
from logs.services import event_record, events_record, notification_create
from logs.vocabulary import SUB_KINDS_BY_KIND, Channel
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


def _timeline(notification):
    """Its events, rows and folded ones (logs.timeline), as every reader sees them."""
    return notification_timeline(notification=notification)


@pytest.mark.django_db
def test_notification_create_writes_the_received_event():
    notification = _notification()
    events = _timeline(notification)
    assert [(e.kind, e.label) for e in events] == [("received", "Received")]
    # Folded into the notification (logs.timeline): no row.
    assert not Event.objects.filter(notification_id=notification.id).exists()
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
    # 30 connections at once: make test runs three of these files side by side, and
    # PostgreSQL's default max_connections is 100.
    notifications = [_notification() for _ in range(5)]
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


# --- request-level outcomes (issue 6, item 2) ---------------------------------------------------


def _deliveries(notification):
    return Delivery.objects.filter(notification_id=notification.id)


@pytest.mark.django_db
def test_a_request_level_failure_without_channels_marks_failure():
    notification = _notification()

    result = event_record(
        notification_id=notification.id, kind="failed", source="api",
        detail="Bad parameters: mergeTags.orderId is missing.",
    )  # fmt: skip

    assert result.created and result.delivery is None
    assert (result.event.channel, result.event.label) == ("", "Failed")
    assert not _deliveries(notification).exists()
    assert _refetch(notification).status == "failure"


@pytest.mark.django_db
def test_a_request_level_plan_limit_without_channels_marks_success():
    notification = _notification()

    event_record(
        notification_id=notification.id, kind="ignored", sub_kind="plan_limit", source="pipeline"
    )

    assert not _deliveries(notification).exists()
    assert _refetch(notification).status == "success"


@pytest.mark.django_db
def test_a_request_level_failure_still_decides_after_a_channel_is_delivered():
    notification = _notification()
    event_record(notification_id=notification.id, kind="failed", source="api")
    event_record(notification_id=notification.id, kind="delivered", channel="email", source="x")

    assert _deliveries(notification).get().state == "delivered"
    assert _refetch(notification).status == "failure"


@pytest.mark.django_db
def test_a_request_level_ignored_leaves_a_pending_channel_to_decide():
    notification = _notification()
    event_record(notification_id=notification.id, kind="sent", channel="sms", source="twilio")
    event_record(
        notification_id=notification.id, kind="ignored", sub_kind="user_preference",
        source="pipeline",
    )  # fmt: skip
    assert _refetch(notification).status == "received"

    event_record(notification_id=notification.id, kind="delivered", channel="sms", source="twilio")
    assert _refetch(notification).status == "success"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(kind="sent"), "'sent' event belongs to a channel: pass channel="),
        (dict(kind="engagement", sub_kind="opened"), "belongs to a channel: pass channel="),
        (dict(kind="failed", sub_kind="bounce"), r"needs channel= \('email'\)"),
        (dict(kind="delivered", sub_kind="busy"), "belongs to a channel"),
        (
            dict(kind="failed", delivery_fields={"error_message": "bad"}),
            "event without a channel has none: pass channel=, or put the reason in detail=",
        ),
    ],
)
def test_a_channel_less_event_that_needs_a_channel_is_refused(kwargs, message):
    notification = _notification()

    with pytest.raises(ValueError, match=message):
        event_record(notification_id=notification.id, source="api", **kwargs)

    assert len(_timeline(notification)) == 1  # Received
    assert _refetch(notification).status == "received"


# --- sub-kinds fit their channel (issue 6, item 3) ----------------------------------------------

# Written out from the product's vocabulary (docs/architecture.md), not derived from the table
# under test.
_EMAIL, _SMS, _CALL = {"email"}, {"sms"}, {"call"}
CHANNELS_OF_SUB_KIND = {
    # The user's app opens and clicks in-app items too (issue 17, item 5).
    "bounce": _EMAIL, "delivery_delay": _EMAIL, "opened": _EMAIL | {"in_app"},
    "clicked": _EMAIL | {"in_app"},
    "complained": _EMAIL, "unsubscribed": _EMAIL,
    "undelivered": _SMS, "infrastructure": _SMS,
    "completed": _CALL, "busy": _CALL, "no_answer": _CALL, "cannot_reach": _CALL,
    "dashboard_preference": set(Channel.values), "user_preference": set(Channel.values),
    "plan_limit": set(Channel.values),
}  # fmt: skip


@pytest.mark.django_db
def test_every_sub_kind_is_accepted_on_its_channels_and_refused_on_the_others():
    notification = _notification()
    accepted, refused = set(), set()
    for kind, sub_kinds in SUB_KINDS_BY_KIND.items():
        for sub_kind in sub_kinds:
            for channel in Channel.values:
                try:
                    event_record(
                        notification_id=notification.id, kind=kind, sub_kind=sub_kind,
                        channel=channel, source="x",
                    )  # fmt: skip
                    accepted.add((sub_kind, channel))
                except ValueError as error:
                    assert "does not fit channel" in str(error)
                    refused.add((sub_kind, channel))

    expected = {(sub, ch) for sub, channels in CHANNELS_OF_SUB_KIND.items() for ch in channels}
    assert accepted == expected
    assert accepted.isdisjoint(refused)
    assert len(_timeline(notification)) == 1 + len(expected)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "sub_kind", "channel", "message"),
    [
        (
            "delivered", "busy", "email",
            "Sub-kind 'busy' does not fit channel 'email': it belongs to 'call'. "
            "A 'delivered' event on 'email' takes no sub-kind (sub_kind='')",
        ),
        (
            "failed", "bounce", "sms",
            "'bounce' does not fit channel 'sms': it belongs to 'email'. A 'failed' event on "
            "'sms' takes no sub-kind or one of 'infrastructure', 'undelivered'",
        ),
        ("engagement", "opened", "call", "'opened' does not fit channel 'call'"),
        ("failed", "cannot_reach", "in_app", "'cannot_reach' does not fit channel 'in_app'"),
    ],
)  # fmt: skip
def test_a_sub_kind_of_another_channel_is_refused_saying_what_to_use(
    kind, sub_kind, channel, message
):
    notification = _notification()

    with pytest.raises(ValueError, match=re.escape(message)):
        event_record(
            notification_id=notification.id, kind=kind, sub_kind=sub_kind, channel=channel,
            source="x",
        )  # fmt: skip

    assert not _deliveries(notification).exists()
    assert len(_timeline(notification)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("channel", ["mail", "EMAIL", "whatsapp", " "])
def test_an_unknown_channel_is_refused(channel):
    notification = _notification()

    with pytest.raises(ValueError, match=f"Unknown channel {channel!r}: use one of 'email', "):
        event_record(notification_id=notification.id, kind="sent", channel=channel, source="x")

    assert not _deliveries(notification).exists()


# --- deduplication across zones and millisecond times (issue 6, item 4) -------------------------

TOKYO = timezone(timedelta(hours=9))
NEW_YORK = timezone(timedelta(hours=-5))


def _recorded_twice(first: dict, second: dict) -> int:
    """How many events two callbacks of the same delivered SMS leave."""
    notification = _notification()
    for payload_and_time in (first, second):
        event_record(
            notification_id=notification.id, kind="delivered", channel="sms", source="twilio",
            **payload_and_time,
        )  # fmt: skip
    return Event.objects.filter(notification_id=notification.id, kind="delivered").count()


@pytest.mark.django_db
def test_the_same_instant_in_two_zones_is_recorded_once():
    payload = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    at = T0 + timedelta(seconds=7)

    assert (
        _recorded_twice(
            dict(occurred_at=at, payload=payload),
            dict(occurred_at=at.astimezone(TOKYO), payload=payload),
        )
        == 1
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("2026-11-20T12:00:07Z", "2026-11-20T21:00:07+09:00"),
        ("2026-11-20T12:00:07.250000+00:00", "2026-11-20 07:00:07.25-05:00"),
        ("Fri, 20 Nov 2026 12:00:07 +0000", "Fri, 20 Nov 2026 13:00:07 +0100"),
        (T0 + timedelta(seconds=7), (T0 + timedelta(seconds=7)).astimezone(NEW_YORK)),
    ],
    ids=["iso-z-vs-tokyo", "iso-fraction-vs-new-york", "rfc-2822", "datetime-objects"],
)
def test_times_nested_in_the_payload_are_compared_in_utc(first, second):
    def payload(moment):
        return {"MessageSid": "SM1", "events": [{"status": "delivered", "at": moment}]}

    assert _recorded_twice(dict(payload=payload(first)), dict(payload=payload(second))) == 1


@pytest.mark.django_db
def test_different_instants_in_the_payload_are_two_events():
    def payload(moment):
        return {"MessageSid": "SM1", "Timestamp": moment}

    assert (
        _recorded_twice(
            dict(payload=payload("2026-11-20T12:00:07Z")),
            dict(payload=payload("2026-11-20T12:00:07+09:00")),
        )
        == 2
    )


@pytest.mark.django_db
def test_a_datetime_inside_a_payload_is_stored_as_iso_text_in_its_own_zone():
    notification = _notification()
    at = (T0 + timedelta(seconds=7)).astimezone(TOKYO)

    result = event_record(
        notification_id=notification.id, kind="sent", channel="email", source="x",
        payload={"esp": {"timestamp": at}, "raw": "2026-11-20T12:00:07Z"},
    )  # fmt: skip

    stored = Event.objects.get(id=result.event.id).payload
    assert stored == {"esp": {"timestamp": at.isoformat()}, "raw": "2026-11-20T12:00:07Z"}


def _epoch_ms_time(moment: datetime, *, rounded: bool = False) -> datetime:
    """The creation time as an API client knows it: epoch milliseconds, as a datetime."""
    micros = int(moment.timestamp() * 1_000_000)
    milliseconds = round(micros / 1000) if rounded else micros // 1000
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


@pytest.mark.django_db
@pytest.mark.parametrize("rounded", [False, True], ids=["truncated", "rounded"])
def test_a_creation_time_known_to_the_millisecond_finds_the_notification(rounded):
    created_at = T0 + timedelta(microseconds=123_789)
    notification = _notification(created_at=created_at)
    known = _epoch_ms_time(created_at, rounded=rounded)
    assert known != created_at

    result = event_record(
        notification_id=notification.id, notification_created_at=known, kind="sent",
        channel="email", source="x",
    )  # fmt: skip

    assert result.created
    assert result.delivery.notification_created_at == created_at


@pytest.mark.django_db
def test_a_creation_time_two_milliseconds_off_does_not_match():
    created_at = T0 + timedelta(microseconds=123_789)
    notification = _notification(created_at=created_at)

    with pytest.raises(Notification.DoesNotExist):
        event_record(
            notification_id=notification.id, kind="sent", channel="email", source="x",
            notification_created_at=created_at - timedelta(milliseconds=2),
        )  # fmt: skip


@pytest.mark.django_db
def test_the_millisecond_lookup_reads_one_day_partition():
    created_at = django_timezone.now()
    notification = _notification(created_at=created_at)

    with CaptureQueriesContext(connection) as queries:
        event_record(
            notification_id=notification.id, kind="sent", channel="email", source="x",
            notification_created_at=_epoch_ms_time(created_at),
        )  # fmt: skip

    lock = next(q["sql"] for q in queries if "FOR UPDATE" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {lock}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    read = set(re.findall(r"logs_notification_\w+", plan))
    day = partition_name("logs_notification", created_at.astimezone(UTC).date())
    # Only that day's partition and its indexes: no other day, no DEFAULT.
    assert read and all(name.startswith(day) for name in read), plan


@pytest.mark.django_db
def test_a_naive_creation_time_is_refused():
    notification = _notification()

    with pytest.raises(ValueError, match=r"notification_created_at .* is naive"):
        event_record(
            notification_id=notification.id, kind="sent", channel="email", source="x",
            notification_created_at=T0.replace(tzinfo=None),
        )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_event_recorded_is_sent_once_per_new_event_inside_its_transaction():
    """Receivers (outbound stream, rollups) see every new event once, duplicates never, and
    what they write commits or rolls back with the event."""
    from logs.signals import event_recorded

    seen = []

    def receiver(sender, *, notification, delivery, event, batch, **kwargs):
        # A Received of a new notification comes with its batch (one multi-statement query,
        # atomic by itself); every other event inside event_record's transaction.
        in_transaction = connection.in_atomic_block or batch is not None
        seen.append((event.kind, delivery.channel if delivery else "", notification.status,
                     in_transaction))  # fmt: skip

    event_recorded.connect(receiver)
    try:
        notification = _notification()
        for _ in range(2):  # the second is a duplicate: not sent again
            event_record(
                notification_id=notification.id,
                kind="sent",
                channel="email",
                source="pipeline",
                dedupe_key="sent:email",
                delivery_fields={"reports_delivery": False},
            )
    finally:
        event_recorded.disconnect(receiver)
    assert seen == [("received", "", "received", True), ("sent", "email", "success", True)]


@pytest.mark.django_db(transaction=True)
def test_a_receivers_failing_write_leaves_no_notification_behind():
    """The batch of a new notification (its rows, the receivers' writes, the caller's) is
    one query: a statement that fails undoes the ones before it."""
    from django.db import IntegrityError

    from logs.signals import event_recorded
    from logs.statements import statement_run

    def receiver(sender, *, notification, batch, **kwargs):
        # A row with its environment but no id (NOT NULL): on Citus it reaches its shard.
        statement_run(
            "INSERT INTO logs_notification (id, environment_id) VALUES (NULL, %s)",
            [notification.environment_id],
            batch=batch,
        )

    environment = EnvironmentFactory()
    event_recorded.connect(receiver)
    try:
        with pytest.raises(IntegrityError):
            notification_create(environment_id=environment.id, notification_type="welcome",
                                user_id="usr_atomic")  # fmt: skip
    finally:
        event_recorded.disconnect(receiver)
    assert not Notification.objects.filter(environment_id=environment.id).exists()
    assert not Event.objects.filter(environment_id=environment.id).exists()


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_needs_the_rows_gets_them_in_a_transaction():
    """batch.transaction(): the rows are written (the event has its id) inside a transaction
    that the receiver's own failure rolls back with them."""
    from logs.signals import event_recorded

    seen = []

    def receiver(sender, *, notification, event, batch, **kwargs):
        batch.transaction()
        written = Event.objects.filter(id=event.id, notification_id=notification.id).exists()
        seen.append((event.id, connection.in_atomic_block, written))
        if notification.user_id == "usr_fails":
            raise RuntimeError("the receiver failed")

    event_recorded.connect(receiver)
    try:
        environment_id = EnvironmentFactory().id
        # Not through the API: the Received is a row (an API send's is folded, no row).
        kept = notification_create(
            environment_id=environment_id, notification_type="welcome", user_id="usr_kept",
            source="console",
        )  # fmt: skip
        with pytest.raises(RuntimeError):
            notification_create(environment_id=EnvironmentFactory().id, notification_type="welcome",
                                user_id="usr_fails", source="console")  # fmt: skip
    finally:
        event_recorded.disconnect(receiver)
    assert [(bool(event_id), atomic, found) for event_id, atomic, found in seen] == [
        (True, True, True),
        (True, True, True),
    ]
    assert Event.objects.get(notification=kept, kind="received").id == seen[0][0]
    assert not Notification.objects.filter(user_id="usr_fails").exists()
    assert not Event.objects.filter(id=seen[1][0]).exists()


@pytest.mark.django_db
def test_a_batched_insert_writes_what_save_would():
    """insert_statement (the send path's INSERTs) and Model.save() store the same row: JSON
    as JSON, times as times, defaults filled."""
    from logs.statements import insert_statement

    environment = EnvironmentFactory()
    values = dict(
        environment_id=environment.id, notification_type="welcome", user_id="usr_same",
        merge_tags={"n": 1, "nested": {"a": [1, "x"]}}, request={"notificationId": "welcome"},
        created_at=T0, updated_at=T0,
    )  # fmt: skip
    saved = Notification(id=uuid.uuid4(), **values)
    saved.save(force_insert=True)
    batched = Notification(id=uuid.uuid4(), **values)
    sql, params = insert_statement(batched)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)

    def row(notification):
        return Notification.objects.filter(id=notification.id).values().get()

    assert {**row(batched), "id": None} == {**row(saved), "id": None}
    assert Notification.objects.filter(stored_merge_tags__nested__a=[1, "x"]).count() == 2


# --- events_record: several events in one transaction ---------------------------------------


def _spec(notification, kind, seconds, **kwargs):
    return EventSpec(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        environment_id=notification.environment_id,  # as callbacks give it
        kind=kind,
        channel=kwargs.pop("channel", "sms"),
        source="twilio",
        occurred_at=T0 + timedelta(seconds=seconds),
        **kwargs,
    )


@pytest.mark.django_db
def test_a_batch_records_each_event_seeing_the_ones_before_it():
    first, second = _notification(), _notification(created_at=T0 - timedelta(days=1))
    outcomes = events_record(
        [
            _spec(first, "sent", 1, provider_event_id="a-sent"),
            _spec(second, "sent", 1, provider_event_id="b-sent"),
            _spec(first, "delivered", 5, provider_event_id="a-delivered"),
            _spec(second, "failed", 6, sub_kind="undelivered", provider_event_id="b-failed"),
            _spec(first, "delivered", 5, provider_event_id="a-delivered"),  # the same again
        ]
    )
    assert [outcome.created for outcome in outcomes] == [True, True, True, True, False]
    assert outcomes[4].event.id == outcomes[2].event.id
    assert (_refetch(first).status, _refetch(second).status) == ("success", "failure")
    assert len(_timeline(first)) == 3  # received, sent, delivered
    assert Delivery.objects.get(notification_id=second.id).state_detail == "undelivered"


@pytest.mark.django_db
def test_a_batch_gives_each_bad_or_unknown_event_its_error_and_records_the_rest():
    notification = _notification()
    unknown = uuid.uuid4()
    outcomes = events_record(
        [
            _spec(notification, "failed", 2, sub_kind="bounce"),  # an email's sub-kind
            EventSpec(notification_id=unknown, kind="sent", channel="sms", source="twilio"),
            _spec(notification, "sent", 1),
        ]
    )
    assert isinstance(outcomes[0], ValueError)
    assert "does not fit channel 'sms'" in str(outcomes[0])
    assert isinstance(outcomes[1], Notification.DoesNotExist)
    assert outcomes[2].created
    kinds = [event.kind for event in _timeline(notification)]
    assert sorted(kinds) == ["received", "sent"]


@pytest.mark.django_db
def test_a_batch_shares_its_reads():
    environment = EnvironmentFactory()  # on Citus the lock is one statement per environment
    notifications = [_notification(environment=environment) for _ in range(5)]
    for notification in notifications:
        event_record(**vars(_spec(notification, "sent", 1)))  # its delivery exists
    specs = [_spec(n, "delivered", 2) for n in notifications] + [
        _spec(n, "failed", 3, sub_kind="undelivered") for n in notifications
    ]
    with CaptureQueriesContext(connection) as queries:
        outcomes = events_record(specs)
    assert all(outcome.created for outcome in outcomes)
    statements = [
        q["sql"].lstrip() for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    # One lock of the five notifications, one read of their events, one of their deliveries;
    # then the events' writes as one statement (a WITH ... SELECT, the batch of logs.statements),
    # a second one from the first event of a notification that already has writes in it (a
    # statement cannot write a row twice): here the five Delivered, then the five Failed; and
    # last the alert counters' upserts, sorted (logs.statements.SharedRowWrites), pipelined.
    reads = [sql for sql in statements if sql.startswith("SELECT")]
    assert len(reads) == 3, reads
    assert "FOR UPDATE" in reads[0]
    writes = statements[3:]
    assert [sql.startswith("WITH") for sql in writes[:2]] == [True, True]
    assert [sql.count('INSERT INTO "logs_event"') for sql in writes[:2]] == [5, 5]
    assert [sql.split("(")[0].split() for sql in writes[2:]] == [
        ["10", "times:", "INSERT", "INTO", "alerts_minutecount"]  # executemany, as Django logs it
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_never_deadlock_on_the_shared_counters():
    """Each batch's events touch the alert counters (one row per shard of notifications) in
    an order of their own. Taken in event order, two batches at once deadlock: one holds a
    shard's row and waits for another's that the other batch holds (PostgreSQL then fails
    one of them after deadlock_timeout). The counters are written last, sorted."""
    import random

    from alerts.models import MinuteCount

    environment = EnvironmentFactory()
    notifications = [_notification(environment=environment) for _ in range(32)]
    for notification in notifications:
        event_record(**vars(_spec(notification, "sent", 1)))
    errors: list[Exception] = []
    start = threading.Barrier(2)

    def record(seed):
        # Each batch its own notifications (they would serialise on their row locks), over
        # the same counter shards, in an order of its own.
        own = notifications[seed - 1 :: 2]
        shuffled = random.Random(seed).sample(own, len(own))
        try:
            start.wait(timeout=10)
            for round_ in range(4):
                kind = "failed" if round_ % 2 else "delivered"
                sub_kind = "undelivered" if kind == "failed" else ""
                events_record(
                    [
                        _spec(
                            n,
                            kind,
                            10 + round_,
                            sub_kind=sub_kind,
                            provider_event_id=f"{seed}:{round_}",
                        )
                        for n in shuffled
                    ]
                )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    # Each notification: one event in each of its batch's 4 rounds.
    counted = MinuteCount.objects.filter(kind__in=["delivered", "failed"])
    assert sum(counted.values_list("count", flat=True)) == 4 * len(notifications)
