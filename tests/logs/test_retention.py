from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from logs.models import Event, Notification
from logs.partitions import partition_drop, partition_list, partition_name, partitions_ensure
from logs.retention import retention_purge
from logs.services import event_record, notification_create
from tests.factories import EnvironmentFactory


def _day(offset: int):
    return timezone.now().astimezone(UTC).date() + timedelta(days=offset)


def _at(day) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)


def _notification(environment, created_at):
    notification = notification_create(
        environment_id=environment.id, notification_type="welcome", user_id="u",
        created_at=created_at,
    )  # fmt: skip
    event_record(notification_id=notification.id, kind="sent", channel="email", source="x")
    return notification


@pytest.fixture
def history(db):
    environment = EnvironmentFactory()
    partitions_ensure(days_ahead=1, start=_day(-10))
    old = _notification(environment, _at(_day(-9)))
    edge = _notification(environment, _at(_day(-7)))  # its day ended 6 days and 14 h ago
    recent = _notification(environment, _at(_day(-1)))
    return old, edge, recent


def _names():
    return {p.name for table in ("logs_notification", "logs_event") for p in partition_list(table)}


@pytest.mark.django_db
def test_dry_run_lists_whole_days_past_retention_and_drops_nothing(history):
    old, _, _ = history
    expired = retention_purge(retention_days=7, dry_run=True)
    names = {p.name for p in expired.partitions}
    assert partition_name("logs_notification", _day(-9)) in names
    assert partition_name("logs_event", _day(-9)) in names
    assert partition_name("logs_notification", _day(-7)) not in names
    assert Notification.objects.filter(id=old.id).exists()


@pytest.mark.django_db
def test_purge_drops_old_days_with_their_events_and_keeps_the_rest(history):
    old, edge, recent = history
    retention_purge(retention_days=7)
    assert not Notification.objects.filter(id=old.id).exists()
    assert not Event.objects.filter(notification_id=old.id).exists()
    assert set(Notification.objects.values_list("id", flat=True)) >= {edge.id, recent.id}
    assert partition_name("logs_delivery", _day(-9)) not in {
        p.name for p in partition_list("logs_delivery")
    }
    before = _names()
    again = retention_purge(retention_days=7)  # idempotent
    assert again.partitions == [] and again.busy == []
    assert _names() == before


@pytest.mark.django_db
def test_old_rows_stranded_in_default_age_out_too():
    environment = EnvironmentFactory()
    stranded = _notification(environment, _at(_day(-30)))  # no partition for that day: DEFAULT
    retention_purge(retention_days=7)
    assert not Notification.objects.filter(id=stranded.id).exists()
    assert not any(p.start and p.start.date() == _day(-30) for p in partition_list("logs_event"))


@pytest.mark.django_db
def test_purge_logs_command_reports_and_refuses_a_bad_retention(history):
    out = StringIO()
    call_command("purge_logs", "--dry-run", "--days", "7", stdout=out)
    assert out.getvalue().startswith("Would drop")
    assert partition_name("logs_notification", _day(-9)) in out.getvalue()
    with pytest.raises(Exception, match="at least 1"):
        call_command("purge_logs", "--days", "0", stdout=StringIO())


@pytest.mark.django_db
def test_purge_drops_only_our_day_partitions_never_one_attached_by_hand():
    def attach(name, first, last):
        with connection.cursor() as cursor:
            cursor.execute(
                f'CREATE TABLE "{name}" PARTITION OF logs_event FOR VALUES FROM (%s) TO (%s)',
                [_at(first) - timedelta(hours=10), _at(last) - timedelta(hours=10)],
            )

    attach("logs_event_archive", _day(-31), _day(-30))
    attach("logs_event_p20000101", _day(-41), _day(-40))  # our pattern, not its day
    attach(partition_name("logs_event", _day(-52)), _day(-52), _day(-50))  # two days

    purge = retention_purge(retention_days=7)

    names = {p.name for p in partition_list("logs_event")}
    assert {
        "logs_event_archive",
        "logs_event_p20000101",
        partition_name("logs_event", _day(-52)),
    } <= names
    assert not {p.name for p in purge.partitions} & names
    for partition in partition_list("logs_event"):
        if partition.name == "logs_event_archive" or partition.is_default:
            with pytest.raises(ValueError, match="never DEFAULT"):
                partition_drop(partition)
