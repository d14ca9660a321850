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
from tests.helpers import skip_on_citus


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
    # The notification, its delivery and the Sent (source "x", a row; the Received is
    # folded into the notification: logs.timeline).
    assert [_rows(n) for n in kept] == [(1, 1, 1)] * 2
    assert _rows(others_old) == (1, 1, 1)
    assert (run.scope, run.account, run.account_name) == ("account", short, short.name)
    assert run.rows_deleted == 2 * (1 + 1 + 1)
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


def _held(row_id, created_at):
    """Another connection holding `row_id`'s row locked (FOR UPDATE) until closed: a purge
    batch that reaches the row waits there, its earlier batches committed."""
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid() FROM logs_notification "
            "WHERE id = %s AND created_at = %s FOR UPDATE",
            [row_id, created_at],
        )
        [(pid,)] = cursor.fetchall()
    return holder, pid


def _waits_for(pid: int, holder_pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))", [holder_pid, pid])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_batches_commit_as_they_go_and_writers_are_not_blocked():
    """While an account's purge is under way (held in the middle: the batch that reaches a row
    another connection holds locked waits for it), a third connection sees the earlier
    batches gone, and writes into the very partition being purged under a 1 s lock_timeout:
    a write the purge held up would be an error, not a slow pass."""
    skip_on_citus(
        "the held row's lock and the purge's wait on it are on a worker node, where this "
        "test's pg_backend_pid() and lock checks on the coordinator cannot see them"
    )
    now = timezone.now()
    day = now - timedelta(days=3)
    partitions_ensure(days_ahead=1, start=day.date())
    account = AccountFactory(retention_days=2)
    environment = EnvironmentFactory(account=account)
    total = 6000
    # Ids descend as rows are inserted, so a batch takes the same rows whether it reads the
    # partition in its physical order or by its (environment, created_at, id DESC) index.
    Notification.objects.bulk_create(
        Notification(id=uuid.UUID(int=total - i), environment=environment,
                     notification_type="bulk", user_id=f"u{i}", created_at=day, updated_at=day)
        for i in range(total)
    )  # fmt: skip
    old_rows = Notification.objects.filter(environment=environment, created_at__lt=now)
    holder, holder_pid = _held(uuid.UUID(int=total // 2), day)  # reached after 120 batches
    outcome = {}

    def purge():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                outcome["pid"] = cursor.fetchone()[0]
                cursor.execute("SET lock_timeout = 0")  # waits for the held row, however long
            outcome["run"] = account_retention_purge(account=account, batch_size=25)
        finally:
            connection.close()

    thread = threading.Thread(target=purge)
    thread.start()
    try:
        deadline = time.monotonic() + 120  # a guard against hanging, not a bound on speed
        while not ("pid" in outcome and _waits_for(outcome["pid"], holder_pid)):
            assert thread.is_alive(), "the purge ended without reaching the held row"
            assert time.monotonic() < deadline, "the purge never reached the held row"
            time.sleep(0.01)
        remaining = old_rows.count()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
        try:
            written = [
                # A late event of the same account, and another account's row of the very
                # day being purged, into the partition the purge is deleting from.
                _notification(environment, now - timedelta(hours=1)),
                Notification.objects.create(
                    id=uuid.uuid4(), environment=EnvironmentFactory(), notification_type="w",
                    user_id="w", created_at=day, updated_at=day,
                ),
            ]  # fmt: skip
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        still_under_way = _waits_for(outcome["pid"], holder_pid)
    finally:
        holder.rollback()
        holder.close()
        thread.join(120)

    assert 0 < remaining < total, f"batches were not committed one by one ({remaining} left)"
    assert still_under_way, "the writes must go in while the purge is under way"
    assert not thread.is_alive()
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
