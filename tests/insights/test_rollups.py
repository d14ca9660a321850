"""Hourly rollups follow the log: one count per delivery and kind, never twice for a
duplicate, the same whether kept up live or rebuilt from the log, and exact under
concurrent recording."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from insights.models import HourlyRollup, RollupDelta
from insights.services import rollups_fold, rollups_purge, rollups_rebuild
from tests.factories import EnvironmentFactory
from tests.insights.helpers import notification_with, rollup_rows, rollup_totals

pytestmark = pytest.mark.django_db

BOUNCED = [("sending", "email"), ("sent", "email"), ("failed", "email", "bounce")]
DELAYED_THEN_DELIVERED = [
    ("sent", "email"),
    ("failed", "email", "delivery_delay"),
    ("delivered", "email"),
    ("engagement", "email", "opened"),
    ("engagement", "email", "clicked"),
]


def test_each_delivery_counts_once_per_kind():
    environment = EnvironmentFactory()
    notification_with(environment, BOUNCED)
    notification_with(environment, DELAYED_THEN_DELIVERED)
    # A call rings (Sent) and is answered (Sent again: in-progress), then completes.
    notification_with(
        environment,
        [
            ("sent", "call", "", "ringing"),
            ("sent", "call", "", "in-progress"),
            ("delivered", "call", "completed"),
        ],
        type_="delivery_call",
    )
    notification_with(environment, [("ignored", "sms", "user_preference")])

    rollups_fold()

    assert rollup_totals(environment) == {
        "received": 4, "sent": 3, "delivered": 2, "failed": 2, "ignored": 1, "engaged": 1,
    }  # fmt: skip
    assert rollup_totals(environment, channel="call") == {
        "received": 0, "sent": 1, "delivered": 1, "failed": 0, "ignored": 0, "engaged": 0,
    }  # fmt: skip
    assert not RollupDelta.objects.exists()


def test_a_duplicate_event_is_not_counted_twice():
    environment = EnvironmentFactory()
    notification = notification_with(environment, [("sent", "sms", "", "twilio:SM1:sent")])
    # The provider retries the same callback: the log keeps it once, and so do the rollups.
    from logs.services import event_record

    again = event_record(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        kind="sent",
        channel="sms",
        source="twilio",
        dedupe_key="twilio:SM1:sent",
    )
    rollups_fold()

    assert again.created is False
    assert rollup_totals(environment)["sent"] == 1


def test_rows_are_keyed_by_the_notifications_hour_type_channel_and_template():
    environment = EnvironmentFactory()
    at = datetime(2026, 11, 26, 9, 41, tzinfo=UTC)
    notification_with(environment, BOUNCED, at=at, template="winter")
    notification_with(environment, BOUNCED, at=at + timedelta(hours=1), type_="password_reset")
    rollups_fold()

    rows = rollup_rows(environment)

    assert (
        datetime(2026, 11, 26, 9, tzinfo=UTC),
        "order_tracking",
        "email",
        "winter",
        0,
        1,
        0,
        1,
        0,
        0,
    ) in rows
    assert (
        datetime(2026, 11, 26, 9, tzinfo=UTC),
        "order_tracking",
        "",
        "winter",
        1,
        0,
        0,
        0,
        0,
        0,
    ) in rows
    assert (
        datetime(2026, 11, 26, 10, tzinfo=UTC),
        "password_reset",
        "email",
        "",
        0,
        1,
        0,
        1,
        0,
        0,
    ) in rows


def test_rebuild_from_the_log_gives_the_rows_kept_up_live():
    rebuilt, live = EnvironmentFactory(), EnvironmentFactory()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    history = [
        (BOUNCED, {"at": start, "template": "t"}),
        (DELAYED_THEN_DELIVERED, {"at": start + timedelta(hours=1)}),
        ([("ignored", "", "plan_limit")], {"at": start + timedelta(hours=2)}),
        ([("sent", "call", "", "ringing"), ("sent", "call", "", "answered")], {"type_": "call"}),
    ]
    for environment in (rebuilt, live):
        for events, options in history[:3]:
            notification_with(environment, events, **options)
    rollups_fold()
    for environment in (rebuilt, live):
        events, options = history[3]
        # Still a pending delta when the rebuild runs: it must not be counted twice.
        notification_with(environment, events, **options)
    HourlyRollup.objects.filter(environment=rebuilt).update(sent=999)  # drifted

    result = rollups_rebuild(environment_id=rebuilt.id, since=start - timedelta(hours=1))
    rollups_fold()

    assert not result.busy
    assert rollup_rows(rebuilt) == rollup_rows(live)
    assert rollup_totals(rebuilt)["sent"] == 3


def test_rollups_older_than_retention_are_purged():
    environment = EnvironmentFactory()
    old = datetime.now(UTC) - timedelta(days=400)
    notification_with(environment, BOUNCED, at=old)
    notification_with(environment, BOUNCED)
    rollups_fold()

    deleted = rollups_purge(retention_days=396)

    assert deleted == 2  # the old hour's request row and email row
    assert rollup_totals(environment)["received"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_recording_events_add_up_exactly():
    environment = EnvironmentFactory()
    workers, per_worker = 6, 15
    errors = []

    def record(worker: int) -> None:
        try:
            for index in range(per_worker):
                # Every worker writes the same type, channel and hour: the hot row.
                notification_with(environment, BOUNCED, user_id=f"usr_{worker}_{index}")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    rollups_fold(batch_size=50)  # several batches

    assert errors == []
    total = workers * per_worker
    assert rollup_totals(environment) == {
        "received": total, "sent": total, "delivered": 0,
        "failed": total, "ignored": 0, "engaged": 0,
    }  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_rollups_rebuild_gives_seeded_data_its_rollups():
    from django.core.management import call_command

    from demo.loader import seed_logs
    from logs.models import Delivery, Notification

    summary = seed_logs(notifications=300, days=2, environments=1, parallel=False, analyze=False)
    [environment_id] = summary.environment_ids
    assert not HourlyRollup.objects.exists()  # COPY records no events through the service

    call_command("rollups_rebuild", "--days", "3")

    totals = {
        name: sum(
            getattr(row, name) for row in HourlyRollup.objects.filter(environment_id=environment_id)
        )
        for name in ("received", "delivered", "failed")
    }
    deliveries = Delivery.objects.filter(environment_id=environment_id)
    assert (
        totals["received"]
        == Notification.objects.filter(environment_id=environment_id).count()
        == 300
    )
    assert totals["delivered"] >= deliveries.filter(state="delivered").count() > 0
    assert totals["failed"] >= deliveries.filter(state="failed").count() > 0
