"""Retention per account: an account with a shorter retention loses its older rows in
batches inside the days that remain (each batch its own transaction, so writers go on), the
others keep theirs, and every purge run is recorded."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone

from logs.models import Delivery, Event, Notification, PurgeRun
from logs.partitions import partitions_ensure
from logs.retention import account_retention_purge, retention_purge, retention_purge_accounts
from logs.services import event_record, notification_create
from tests.factories import AccountFactory, EnvironmentFactory


def _notification(environment, created_at):
    notification = notification_create(
        environment_id=environment.id, notification_type="welcome", user_id="u",
        created_at=created_at,
    )  # fmt: skip
    event_record(
        notification_id=notification.id,
        notification_created_at=created_at,
        kind="sent",
        channel="email",
        source="x",
    )
    return notification


def _rows(notification) -> tuple[int, int, int]:
    return (
        Notification.objects.filter(id=notification.id).count(),
        Delivery.objects.filter(notification_id=notification.id).count(),
        Event.objects.filter(notification_id=notification.id).count(),
    )


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_a_two_day_account_loses_its_three_day_old_rows_and_another_keeps_them():
    now = timezone.now()
    partitions_ensure(days_ahead=1, start=(now - timedelta(days=5)).date())
    short = AccountFactory(retention_days=2)
    environments = [EnvironmentFactory(account=short), EnvironmentFactory(account=short)]
    other = EnvironmentFactory(account=AccountFactory())
    old = [_notification(e, now - timedelta(days=3)) for e in environments]
    kept = [_notification(e, now - timedelta(days=1, hours=23)) for e in environments]
    others_old = _notification(other, now - timedelta(days=3))

    [run] = retention_purge_accounts(batch_size=2)

    assert [_rows(n) for n in old] == [(0, 0, 0)] * 2
    assert [_rows(n) for n in kept] == [(1, 1, 2)] * 2  # Sent implies a Sending, etc.
    assert _rows(others_old) == (1, 1, 2)
    assert (run.scope, run.account, run.account_name) == ("account", short, short.name)
    assert run.rows_deleted == 2 * (1 + 1 + 2)
    assert run.retention_days == 2 and run.errors == ""
    assert list(PurgeRun.objects.values_list("scope", flat=True)) == ["account"]


@pytest.mark.django_db
def test_an_install_wide_run_is_recorded_with_the_days_it_dropped():
    partitions_ensure(days_ahead=1, start=(timezone.now() - timedelta(days=10)).date())
    purge = retention_purge(retention_days=7)
    run = PurgeRun.objects.get()
    assert run.scope == "install" and run.account is None and run.retention_days == 7
    assert sorted(run.partitions_dropped) == sorted(p.name for p in purge.partitions)
    assert len(run.partitions_dropped) >= 4 * 2  # two whole days of each table at least
    retention_purge(retention_days=7, dry_run=True)
    assert PurgeRun.objects.count() == 1  # a dry run purges nothing, records nothing


@pytest.mark.django_db(transaction=True)
def test_batches_commit_as_they_go_and_writers_are_not_blocked():
    """While an account's purge runs, another connection sees its old rows go batch by batch
    and writes (into the very partition being purged) under a 1 s lock_timeout."""
    now = timezone.now()
    day = now - timedelta(days=3)
    partitions_ensure(days_ahead=1, start=day.date())
    account = AccountFactory(retention_days=2)
    environment = EnvironmentFactory(account=account)
    total = 6000
    Notification.objects.bulk_create(
        Notification(environment=environment, notification_type="bulk", user_id=f"u{i}",
                     created_at=day, updated_at=day)
        for i in range(total)
    )  # fmt: skip
    old_rows = Notification.objects.filter(environment=environment, created_at__lt=now)
    outcome = {}

    def purge():
        try:
            outcome["run"] = account_retention_purge(account=account, batch_size=25)
        finally:
            connection.close()

    thread = threading.Thread(target=purge)
    thread.start()
    seen, written = set(), []
    deadline = time.monotonic() + 120
    while thread.is_alive() and time.monotonic() < deadline:
        seen.add(old_rows.count())
        if len(seen) > 2 and not written:
            # A late event of the same account, into the partition being purged.
            writer = connections["default"]
            with writer.cursor() as cursor:
                cursor.execute("SET lock_timeout = '1s'")
            started = time.monotonic()
            written.append(_notification(environment, now - timedelta(hours=1)))
            written.append(
                Notification.objects.create(
                    id=uuid.uuid4(), environment=EnvironmentFactory(), notification_type="w",
                    user_id="w", created_at=day, updated_at=day,
                )
            )  # fmt: skip
            write_seconds = time.monotonic() - started
            assert thread.is_alive(), "the purge ended before the write: make it longer"
        time.sleep(0.01)
    thread.join(120)

    assert written, f"the purge finished before it could be observed (saw {sorted(seen)})"
    assert write_seconds < 1
    assert any(0 < count < total for count in seen), "batches were not committed one by one"
    assert outcome["run"].rows_deleted == total
    assert not old_rows.filter(created_at__lt=now - timedelta(days=2)).exists()
    assert Notification.objects.filter(id__in=[n.id for n in written]).count() == 2


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_the_nightly_task_runs_the_install_purge_then_each_shorter_account():
    from logs.tasks import retention_purge_task

    now = timezone.now()
    partitions_ensure(days_ahead=1, start=(now - timedelta(days=3)).date())
    short = AccountFactory(retention_days=2)
    AccountFactory(retention_days=7)  # the install's own: nothing more to do for it
    old = _notification(EnvironmentFactory(account=short), now - timedelta(days=3))

    retention_purge_task.apply()

    assert sorted(PurgeRun.objects.values_list("scope", "account_name")) == [
        ("account", short.name),
        ("install", ""),
    ]
    assert _rows(old) == (0, 0, 0)
