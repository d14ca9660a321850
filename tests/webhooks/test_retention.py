"""Inbox days go with the log's days: the nightly purge drops whole inbox partitions."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from logs.partitions import partition_list, partition_name, partitions_ensure
from logs.retention import retention_purge
from webhooks.models import InboxEntry


def _day(offset: int):
    return timezone.now().astimezone(UTC).date() + timedelta(days=offset)


def _callback(day) -> InboxEntry:
    received_at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)
    return InboxEntry.objects.create(
        received_at=received_at, provider="twilio_sms", path="/webhooks/twilio/sms/", body=b"x"
    )


@pytest.mark.django_db
def test_purge_drops_inbox_days_past_retention_and_keeps_the_rest():
    partitions_ensure(days_ahead=1, start=_day(-10))
    old, recent = _callback(_day(-9)), _callback(_day(-1))

    expired = retention_purge(retention_days=7)

    assert partition_name("webhooks_inbox", _day(-9)) in {p.name for p in expired.partitions}
    assert not InboxEntry.objects.filter(id=old.id).exists()
    assert InboxEntry.objects.filter(id=recent.id).exists()
    names = {p.name for p in partition_list("webhooks_inbox")}
    assert partition_name("webhooks_inbox", _day(-1)) in names
    assert "webhooks_inbox_default" in names


@pytest.mark.django_db
def test_a_callback_received_on_a_day_without_partition_lands_in_default_then_moves():
    far = _day(30)
    entry = _callback(far)  # no partition that far ahead: DEFAULT takes it

    partitions_ensure(days_ahead=1)

    assert partition_name("webhooks_inbox", far) in {
        p.name for p in partition_list("webhooks_inbox")
    }
    assert InboxEntry.objects.filter(id=entry.id).exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_an_environment_purges_its_callbacks_and_keeps_the_rest():
    from accounts.deletion import environment_delete, environment_purge
    from tests.factories import EnvironmentFactory

    doomed, kept = EnvironmentFactory(), EnvironmentFactory()
    mine = _callback(_day(0))
    InboxEntry.objects.filter(id=mine.id).update(environment=doomed)
    theirs, unmatched = _callback(_day(0)), _callback(_day(0))
    InboxEntry.objects.filter(id=theirs.id).update(environment=kept)

    environment_delete(environment=doomed)
    assert environment_purge(environment_id=doomed.id) is True

    assert set(InboxEntry.objects.values_list("id", flat=True)) == {theirs.id, unmatched.id}
