from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from logs.partitions import (
    PARTITIONED_TABLES,
    partition_drop,
    partition_list,
    partition_name,
    partitions_before,
    partitions_ensure,
)
from logs.search_filters import NotificationFilters
from logs.selectors import notification_page
from logs.services import event_record, notification_create
from tests.factories import EnvironmentFactory
from tests.helpers import partition_of_relation


def _partition_of(table: str, column: str, value) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE {column} = %s", [value])
        return partition_of_relation(cursor.fetchone()[0])


def _today():
    return timezone.now().astimezone(UTC).date()


@pytest.mark.django_db
def test_migrate_creates_partitions_ahead_for_every_table(settings):
    for table in PARTITIONED_TABLES:
        names = {p.name for p in partition_list(table)}
        for offset in range(settings.LOG_PARTITIONS_AHEAD + 1):
            assert partition_name(table, _today() + timedelta(days=offset)) in names
        assert f"{table}_default" in names


@pytest.mark.django_db
def test_ensure_partitions_is_idempotent():
    start = _today() - timedelta(days=3)
    first = partitions_ensure(days_ahead=5, start=start)
    assert partition_name("logs_event", start) in first
    assert partitions_ensure(days_ahead=5, start=start) == []


@pytest.mark.django_db
def test_partition_list_orders_days_and_puts_default_last():
    partitions = partition_list("logs_notification")
    assert partitions[-1].is_default
    days = [p.start for p in partitions[:-1]]
    assert days == sorted(days)
    assert all(p.end - p.start == timedelta(days=1) for p in partitions[:-1])


def _notification_with_events(created_at, environment):
    notification = notification_create(
        environment_id=environment.id, notification_type="welcome", user_id="usr_far",
        email="far@example.com", number="+14155550199", created_at=created_at,
    )  # fmt: skip
    event_record(
        notification_id=notification.id, kind="sent", channel="sms", source="twilio",
        occurred_at=created_at, delivery_fields={"provider_message_id": "SMfar"},
    )  # fmt: skip
    event_record(
        notification_id=notification.id, kind="failed", sub_kind="undelivered",
        channel="sms", source="twilio", occurred_at=created_at + timedelta(seconds=5),
    )  # fmt: skip
    return notification


def _found_by_every_selector(environment, notification) -> dict[str, bool]:
    searches = {
        "tracking id": NotificationFilters(tracking_ids=[notification.id]),
        "user id": NotificationFilters(user_ids=["usr_far"]),
        "email": NotificationFilters(email="FAR@example.com"),
        "email prefix": NotificationFilters(email_prefix="far@"),
        "number": NotificationFilters(number="(415) 555-0199"),
        "provider message id": NotificationFilters(provider_message_id="SMfar"),
        "type": NotificationFilters(notification_types=["welcome"]),
        "status": NotificationFilters(statuses=["failure"]),
        "channel": NotificationFilters(channels=["sms"]),
        "event kind": NotificationFilters(event_kind="failed"),
        "event sub-kind": NotificationFilters(event_sub_kind="undelivered"),
        "date range": NotificationFilters(
            created_from=notification.created_at - timedelta(hours=1),
            created_to=notification.created_at + timedelta(hours=1),
        ),
    }
    return {
        name: [
            n.id for n in notification_page(environment_id=environment.id, filters=f).notifications
        ]
        == [notification.id]
        for name, f in searches.items()
    }


@pytest.mark.django_db
def test_rows_outside_every_day_partition_land_in_default_and_are_found():
    environment = EnvironmentFactory()
    far_future = datetime.combine(_today() + timedelta(days=40), datetime.min.time(), UTC)
    notification = _notification_with_events(far_future, environment)
    assert _partition_of("logs_notification", "id", notification.id) == "logs_notification_default"
    assert _partition_of("logs_event", "notification_id", notification.id) == "logs_event_default"
    assert all(_found_by_every_selector(environment, notification).values())


@pytest.mark.django_db
def test_creating_a_day_moves_its_rows_out_of_default():
    environment = EnvironmentFactory()
    day = _today() + timedelta(days=12)
    created_at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=9)
    notification = _notification_with_events(created_at, environment)
    assert _partition_of("logs_delivery", "notification_id", notification.id).endswith("_default")

    created = partitions_ensure(days_ahead=12)
    assert partition_name("logs_notification", day) in created
    for table, column in [("logs_notification", "id"), ("logs_delivery", "notification_id"),
                          ("logs_event", "notification_id")]:  # fmt: skip
        assert _partition_of(table, column, notification.id) == partition_name(table, day)
    assert all(_found_by_every_selector(environment, notification).values())
    # The moved rows still take part in the status rules and idempotency.
    again = event_record(
        notification_id=notification.id, kind="failed", sub_kind="undelivered",
        channel="sms", source="twilio", occurred_at=created_at + timedelta(seconds=5),
    )  # fmt: skip
    assert not again.created


@pytest.mark.django_db
def test_partitions_before_lists_only_whole_days_past_the_cutoff():
    start = _today() - timedelta(days=10)
    partitions_ensure(days_ahead=1, start=start)
    cutoff = datetime.combine(_today() - timedelta(days=7), datetime.min.time(), UTC)
    old = partitions_before("logs_notification", cutoff)
    assert old and all(p.end <= cutoff for p in old)
    assert partition_name("logs_notification", start) in {p.name for p in old}
    assert partition_name("logs_notification", _today()) not in {p.name for p in old}


@pytest.mark.django_db
def test_ensure_partitions_command_reports_and_lists():
    out = StringIO()
    call_command("ensure_partitions", "--days", "6", "--list", stdout=out)
    text = out.getvalue()
    assert "partition(s) created" in text
    assert partition_name("logs_event", _today() + timedelta(days=6)) in text
    assert "logs_event_default" in text and "DEFAULT" in text
    out = StringIO()
    call_command("ensure_partitions", "--days", "6", stdout=out)
    assert out.getvalue().startswith("0 partition(s) created")


@pytest.mark.django_db
def test_rows_of_a_past_day_waiting_in_default_are_moved_without_being_asked():
    environment = EnvironmentFactory()
    past = _today() - timedelta(days=4)
    created_at = datetime.combine(past, datetime.min.time(), UTC) + timedelta(hours=3)
    notification = _notification_with_events(created_at, environment)
    assert _partition_of("logs_notification", "id", notification.id).endswith("_default")

    created = partitions_ensure(days_ahead=1)

    assert partition_name("logs_event", past) in created
    assert _partition_of("logs_event", "notification_id", notification.id) == partition_name(
        "logs_event", past
    )


@pytest.mark.django_db(transaction=True)
def test_a_day_is_created_while_writers_keep_inserting_into_it():
    """Beat was down: today's traffic lands in DEFAULT. Creating the day moves it out while
    writers go on; every row written is found, in the new partition, and none fails."""
    import threading

    before = {p.name for table in PARTITIONED_TABLES for p in partition_list(table)}
    environment = EnvironmentFactory()
    day = _today() + timedelta(days=25)
    moment = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)
    for _ in range(20):
        _notification_with_events(moment, environment)
    written, errors, stop = [], [], threading.Event()

    def writer():
        try:
            while not stop.is_set() and len(written) < 400:
                written.append(
                    notification_create(
                        environment_id=environment.id, notification_type="welcome",
                        user_id="usr_live", created_at=moment,
                    ).id
                )  # fmt: skip
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        created = partitions_ensure(days_ahead=25)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors
    assert partition_name("logs_notification", day) in created
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, count(*) FROM logs_notification "
            "WHERE environment_id = %s GROUP BY 1",
            [environment.id],
        )
        where = {partition_of_relation(name): count for name, count in cursor.fetchall()}
    assert where == {partition_name("logs_notification", day): 20 + len(written)}
    # Leave nothing behind for the tests after this one (transactional test, real tables).
    for table in PARTITIONED_TABLES:
        for partition in partition_list(table):
            if partition.is_day and partition.name not in before:
                partition_drop(partition)


def _constraints_and_indexes(table: str) -> tuple[set[str], int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('c', 'f')",
            [table],
        )
        constraints = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", [table])
        return constraints, cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_new_day_follows_whatever_its_parent_has():
    # Another change may add constraints and indexes to the log tables: a day made later
    # must carry them (ATTACH refuses a table missing a CHECK of its parent).
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE logs_event ADD CONSTRAINT event_source_set CHECK (source <> '')"
        )
        cursor.execute("CREATE INDEX event_source ON logs_event (source)")
    day = _today() + timedelta(days=50)

    created = partitions_ensure(days_ahead=50)

    name = partition_name("logs_event", day)
    assert name in created
    constraints, indexes = _constraints_and_indexes(name)
    parent_constraints, parent_indexes = _constraints_and_indexes("logs_event")
    assert "CHECK (((source)::text <> ''::text))" in constraints
    assert constraints == parent_constraints  # foreign keys too; the bound CHECK is gone
    assert indexes == parent_indexes  # the copies were attached, none built twice
