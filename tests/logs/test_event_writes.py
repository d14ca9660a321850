"""What recording an event writes and reads: the rendered content once (on Sending), only the
columns a step needs, no update that changes nothing, and day partitions with room for
heap-only (HOT) updates, which touch no index."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from logs.models import Delivery, Notification
from logs.partitions import LOG_FILLFACTOR, PARTITIONED_TABLES, partition_create, partition_name
from logs.services import event_record, notification_create
from tests.factories import EnvironmentFactory
from tests.logs.factories import DeliveryFactory, EventFactory, NotificationFactory

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HTML = "<p>Your order shipped.</p>" + "<!-- order 1234 -->" * 20_000  # ~380 kB, stored out of line
UPDATED_TABLES = ("logs_notification", "logs_delivery")


def _email_sent(*, reports_delivery: bool = True) -> Notification:
    environment = EnvironmentFactory()
    notification = notification_create(
        environment_id=environment.id, notification_type="order_tracking", user_id="usr_1",
        email="ada@example.com", created_at=T0, request={"templateId": "shipped"},
        merge_tags={"order": "1234"},
    )  # fmt: skip
    _record(notification, "sending", 1, delivery_fields={
        "provider": "sandbox", "destination": "ada@example.com", "subject": "Shipped",
        "html": HTML, "text": "Your order shipped.",
    })  # fmt: skip
    _record(notification, "sent", 2, delivery_fields={
        "provider_message_id": "m-1", "reports_delivery": reports_delivery,
    })  # fmt: skip
    return notification


def _record(notification, kind, seconds, **kwargs):
    return event_record(
        notification_id=notification.id, notification_created_at=notification.created_at,
        kind=kind, channel=kwargs.pop("channel", "email"), source="sandbox",
        occurred_at=notification.created_at + timedelta(seconds=seconds), **kwargs,
    )  # fmt: skip


def _ctid(model, **lookup) -> str:
    # An UPDATE always writes a new version of the row (even a heap-only one), at a new ctid;
    # within one transaction xmin would not tell.
    table = model._meta.db_table
    where = " AND ".join(f"{column} = %s" for column in lookup)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ctid::text FROM {table} WHERE {where}", list(lookup.values()))
        [(ctid,)] = cursor.fetchall()
    return ctid


def _statements(captured, verb_and_table: str) -> list[str]:
    return [query["sql"] for query in captured.captured_queries if verb_and_table in query["sql"]]


@pytest.mark.django_db
def test_a_delivered_event_writes_none_of_the_content_back():
    notification = _email_sent()
    with CaptureQueriesContext(connection) as captured:
        _record(notification, "delivered", 3)
    sent = [query["sql"] for query in captured.captured_queries]
    assert not [sql for sql in sent if "order 1234" in sql], "the email went back to PostgreSQL"
    [update] = re.findall(r'UPDATE "logs_delivery" SET (.*?) WHERE', "\n".join(sent))
    assert not {'"subject"', '"html"', '"text"'} & set(re.findall(r'"\w+"', update)), update
    delivery = Delivery.objects.get(notification_id=notification.id)
    assert (delivery.state, delivery.subject, delivery.html) == ("delivered", "Shipped", HTML)


@pytest.mark.django_db
def test_a_sending_event_writes_its_delivery_once_with_the_content():
    environment = EnvironmentFactory()
    notification = notification_create(
        environment_id=environment.id, notification_type="order_tracking", user_id="usr_1",
        email="ada@example.com", created_at=T0,
    )  # fmt: skip
    with CaptureQueriesContext(connection) as captured:
        recorded = _record(notification, "sending", 1, delivery_fields={
            "provider": "sandbox", "subject": "Shipped", "html": HTML, "text": "Shipped.",
        })  # fmt: skip
    # One row version: not an empty row, then an UPDATE writing it (and every index) again.
    assert _statements(captured, 'UPDATE "logs_delivery"') == []
    assert len(_statements(captured, 'INSERT INTO "logs_delivery"')) == 1
    delivery = Delivery.objects.get(notification_id=notification.id)
    assert (delivery.id, delivery.state, delivery.html) == (recorded.delivery.id, "sending", HTML)
    assert recorded.event.delivery_id == delivery.id


@pytest.mark.django_db
def test_recording_an_event_reads_no_content_and_no_request():
    notification = _email_sent()
    with CaptureQueriesContext(connection) as captured:
        recorded = _record(notification, "delivered", 3)
    reads = [query["sql"] for query in captured.captured_queries if "SELECT" in query["sql"]]
    for column in ('"html"', '"subject"', '"text"', '"request"', '"merge_tags"'):
        assert not [sql for sql in reads if column in sql.split(" FROM ")[0]], column
    # What the receivers were given still answers for the fields they use, without a query.
    with CaptureQueriesContext(connection) as later:
        assert recorded.notification.request_template_id == "shipped"
        assert recorded.notification.status == "success"
        assert recorded.delivery.state == "delivered"
    assert later.captured_queries == []


@pytest.mark.django_db
def test_an_event_that_keeps_the_status_leaves_the_notification_row_alone():
    notification = _email_sent()  # Sending and Sent: still Received (the provider reports)
    before = _ctid(Notification, id=notification.id)
    updated_at = Notification.objects.get(id=notification.id).updated_at
    with CaptureQueriesContext(connection) as captured:
        _record(notification, "failed", 3, sub_kind="delivery_delay")  # a failure: changes it
        _record(notification, "delivered", 4)  # Delivered replaces the delay: changes it
        _record(notification, "engagement", 5, sub_kind="opened")  # keeps it
        _record(notification, "engagement", 6, sub_kind="clicked")  # keeps it
    assert len(_statements(captured, 'UPDATE "logs_notification"')) == 2
    notification.refresh_from_db()
    assert notification.status == "success"
    assert notification.updated_at > updated_at
    after_status_change = _ctid(Notification, id=notification.id)
    assert after_status_change != before
    _record(notification, "engagement", 7, sub_kind="clicked", dedupe_key="clicked-again")
    assert _ctid(Notification, id=notification.id) == after_status_change


@pytest.mark.django_db
def test_an_event_that_changes_nothing_on_the_delivery_leaves_its_row_alone():
    notification = _email_sent()
    _record(notification, "delivered", 3)
    before = _ctid(Delivery, notification_id=notification.id)
    with CaptureQueriesContext(connection) as captured:
        recorded = _record(notification, "engagement", 4, sub_kind="opened")
    assert recorded.created
    assert _statements(captured, 'UPDATE "logs_delivery"') == []
    assert _ctid(Delivery, notification_id=notification.id) == before


@pytest.mark.django_db
def test_a_new_day_partition_keeps_room_for_heap_only_updates():
    day = datetime(2031, 3, 4, tzinfo=UTC).date()
    partition_create(day=day)
    options = _reloptions([partition_name(table, day) for table in PARTITIONED_TABLES])
    fillfactor = f"fillfactor={LOG_FILLFACTOR}"
    assert fillfactor in options[partition_name("logs_notification", day)]
    assert fillfactor in options[partition_name("logs_delivery", day)]
    # Events and the inbox are written once and never updated by the log: packed full.
    assert not any(o.startswith("fillfactor=") for o in options[partition_name("logs_event", day)])
    assert options[partition_name("webhooks_inbox", day)] is None


@pytest.mark.django_db
def test_every_existing_partition_of_the_updated_tables_has_the_fillfactor():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = ANY(%s::regclass[])",
            [list(UPDATED_TABLES)],
        )
        names = [name for (name,) in cursor.fetchall()]
    assert any(name.endswith("_default") for name in names)
    options = _reloptions(names)
    assert all(f"fillfactor={LOG_FILLFACTOR}" in options[name] for name in names), options


def _reloptions(names: list[str]) -> dict[str, list[str] | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)", [names])
        return dict(cursor.fetchall())


def _updates(table: str) -> tuple[int, int]:
    """This transaction's updates of `table` so far: (all, heap-only)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            [table],
        )
        return cursor.fetchone()


@pytest.mark.django_db
def test_an_update_of_unindexed_columns_stays_heap_only_in_a_full_page():
    """A second bounce's reason on a failed delivery changes no indexed column: with room
    left in its page the new version stays there and no index gets an entry (HOT)."""
    day = datetime(2031, 3, 5, tzinfo=UTC)
    partition_create(day=day.date())
    environment = EnvironmentFactory()
    first = None
    for n in range(120):  # more than a page of deliveries, each written once
        notification = NotificationFactory(
            environment=environment, created_at=day + timedelta(seconds=n), status="failure"
        )
        delivery = DeliveryFactory(
            notification=notification, state="failed", state_detail="bounce",
            failed_at=notification.created_at, error_message="550 mailbox unavailable",
        )  # fmt: skip
        EventFactory(
            notification=notification, delivery=delivery, kind="failed", sub_kind="bounce",
            channel="email", dedupe_key="bounce-1",
        )  # fmt: skip
        first = first or (notification, delivery)
    notification, delivery = first
    table = partition_name("logs_delivery", day.date())
    assert _ctid(Delivery, id=delivery.id).startswith("(0,")
    updates, hot = _updates(table)
    _record(notification, "failed", 60, sub_kind="bounce", dedupe_key="bounce-2",
            delivery_fields={"error_message": "550 5.1.1 user unknown"})  # fmt: skip
    assert Delivery.objects.get(id=delivery.id).error_message == "550 5.1.1 user unknown"
    assert _updates(table) == (updates + 1, hot + 1)
