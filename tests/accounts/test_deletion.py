"""Deleting a tenant: hidden and refused at once, its logs removed in the background in
short batches partition by partition, the tenant rows last, other tenants' writers never
held up."""

import base64
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.deletion import (
    account_purge,
    environment_delete,
    environment_purge,
    environment_row_delete,
    environment_tables,
)
from accounts.models import Account, ApiKey, Environment, Membership, PurgeLease
from accounts.selectors import account_list_for_user, environment_list_for_user
from accounts.tasks import tenant_deletions_resume_task
from demo.loader import seed_logs
from insights.models import RollupDelta
from logs.models import Delivery, Event, Notification
from logs.services import notification_create
from notifications.models import EndUser, SendIdempotencyKey
from tests.factories import (
    AccountFactory,
    ApiKeyFactory,
    EnvironmentFactory,
    MembershipFactory,
    UserFactory,
)
from tests.helpers import series_insert, skip_on_citus

LOG_MODELS = (Notification, Delivery, Event)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def log_rows(environment_id: int) -> int:
    return sum(model.objects.filter(environment_id=environment_id).count() for model in LOG_MODELS)


def mark_deleting(*environments: Environment, account: Account | None = None) -> None:
    """Mark as environment_delete / account_delete do, without enqueueing the purge: these
    tests run it themselves (and no worker elsewhere may race them for it)."""
    now = timezone.now()
    Environment.all_objects.filter(pk__in=[e.pk for e in environments]).update(deleting_at=now)
    if account is not None:
        Account.all_objects.filter(pk=account.pk).update(deleting_at=now)


# --- hidden and refused at once ---------------------------------------------------------------


@pytest.mark.django_db
def test_deleted_environment_is_hidden_in_the_console_and_refused_by_the_api(
    client, django_capture_on_commit_callbacks
):
    environment = EnvironmentFactory(name="doomed", client_secret="doomed-secret-0123456789")
    api_key = ApiKeyFactory(environment=environment)
    notification = notification_create(environment_id=environment.id, notification_type="welcome",
                                       user_id="usr_1")  # fmt: skip
    keep = EnvironmentFactory(account=environment.account, name="kept")
    admin = UserFactory(is_superuser=True)
    client.force_login(admin)
    bearer = {"authorization": f"Bearer {api_key.plain}"}
    assert client.get("/api/v1/environment", headers=bearer).status_code == 200

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            f"/admin/accounts/environment/{environment.pk}/delete/", {"post": "yes"}
        )
    assert response.status_code == 302
    assert len(callbacks) == 1  # the purge, enqueued on commit

    client.get(response.url)  # the success message, shown once
    # Still in the database (the purge has not run), invisible everywhere.
    assert Environment.all_objects.filter(pk=environment.pk).exists()
    assert Notification.objects.filter(pk=notification.pk).exists()
    changelist = client.get("/admin/accounts/environment/").content.decode()
    assert "doomed" not in changelist and "kept" in changelist
    assert client.get(f"/admin/accounts/environment/{environment.pk}/change/").status_code == 404
    logs_page = client.get("/admin/logs/notification/").content.decode()
    assert str(notification.pk) not in logs_page
    assert client.get(f"/admin/logs/notification/{notification.pk}/change/").status_code == 404
    assert client.get("/admin/accounts/apikey/").content.decode().count(api_key.prefix) == 0
    assert list(environment_list_for_user(user=admin)) == [keep]
    # Its credentials answer 401, the client secret and the API key alike.
    for authorization in (
        basic(environment.client_id, "doomed-secret-0123456789"),
        f"Bearer {api_key.plain}",
        basic(environment.client_id, api_key.plain),
    ):
        response = client.get("/api/v1/environment", headers={"authorization": authorization})
        assert response.status_code == 401, authorization


@pytest.mark.django_db
def test_deleted_account_and_its_environments_vanish_for_members(
    client, django_capture_on_commit_callbacks
):
    account = AccountFactory(name="Doomed Inc")
    environment = EnvironmentFactory(account=account, client_secret="doomed-secret-0123456789")
    member = UserFactory()
    MembershipFactory(user=member, account=account, role=Membership.Role.OWNER)
    client.force_login(UserFactory(is_superuser=True))

    with django_capture_on_commit_callbacks():
        response = client.post(f"/admin/accounts/account/{account.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    client.get(response.url)  # the success message, shown once

    assert not account_list_for_user(user=member).exists()
    assert not environment_list_for_user(user=member).exists()
    assert "Doomed Inc" not in client.get("/admin/accounts/account/").content.decode()
    response = client.get(
        "/api/v1/environment",
        headers={"authorization": basic(environment.client_id, "doomed-secret-0123456789")},
    )
    assert response.status_code == 401
    # The name is free again at once.
    assert Account.objects.create(name="Doomed Inc").pk != account.pk


@pytest.mark.django_db
def test_delete_confirmation_page_collects_no_log_rows(client, django_assert_max_num_queries):
    environment = EnvironmentFactory(name="doomed")
    for n in range(3):
        notification_create(environment_id=environment.id, notification_type="welcome",
                            user_id=f"usr_{n}")  # fmt: skip
    client.force_login(UserFactory(is_superuser=True))
    with django_assert_max_num_queries(8):
        response = client.get(f"/admin/accounts/environment/{environment.pk}/delete/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "removed in the background" in text and "welcome to" not in text


@pytest.mark.django_db
def test_delete_selected_action_marks_every_selected_environment(client):
    first, second = EnvironmentFactory(), EnvironmentFactory()
    client.force_login(UserFactory(is_superuser=True))
    response = client.post(
        "/admin/accounts/environment/",
        {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Environment.objects.filter(pk__in=[first.pk, second.pk]).exists()
    marked = Environment.all_objects.filter(pk__in=[first.pk, second.pk])
    assert marked.count() == 2 and not marked.filter(deleting_at=None).exists()


# --- removed in the background -----------------------------------------------------------------


@pytest.fixture
def two_environments(transactional_db):
    """An account with two environments holding seeded logs over two days (so several
    partitions), committed: the purge commits batch by batch."""
    account = Account.objects.create(name="Two Envs")
    doomed = EnvironmentFactory(account=account, name="doomed")
    kept = EnvironmentFactory(account=account, name="kept")
    ApiKeyFactory(environment=doomed)
    seed_logs(notifications=1_500, days=2, account="Two Envs", seed=3, analyze=False)
    return doomed, kept


def test_purge_removes_the_logs_in_short_batches_partition_by_partition(two_environments):
    doomed, kept = two_environments
    doomed_rows, kept_rows = log_rows(doomed.id), log_rows(kept.id)
    assert doomed_rows > 1_000 and kept_rows > 1_000
    mark_deleting(doomed)

    with CaptureQueriesContext(connection) as queries:
        assert environment_purge(environment_id=doomed.id, batch_size=250) is True

    batches = [q["sql"] for q in queries if "ctid" in q["sql"]]
    # Every batch deletes from one partition (never a parent table), at most 250 rows.
    partition = re.compile(
        r'^DELETE FROM "(logs_(event|delivery|notification)|webhooks_inbox)_(p\d{8}|default)" '
    )
    assert batches and all(partition.match(sql) for sql in batches), batches[:3]
    assert all("LIMIT 250" in sql for sql in batches)
    assert len(batches) >= doomed_rows / 250
    assert log_rows(doomed.id) == 0
    assert log_rows(kept.id) == kept_rows
    assert not Environment.all_objects.filter(pk=doomed.id).exists()
    assert not ApiKey.all_objects.filter(environment_id=doomed.id).exists()
    assert Environment.objects.filter(pk=kept.id).exists()
    # Safe to run twice.
    assert environment_purge(environment_id=doomed.id, batch_size=250) is True


def test_account_purge_removes_every_environment_then_the_account(two_environments):
    doomed, kept = two_environments
    account = doomed.account
    mark_deleting(*account.environments.all(), account=account)
    assert account_purge(account_id=account.id, batch_size=1_000) is True
    assert log_rows(doomed.id) == log_rows(kept.id) == 0
    assert not Environment.all_objects.filter(account_id=account.id).exists()
    assert not Account.all_objects.filter(pk=account.id).exists()
    assert not Membership.objects.filter(account_id=account.id).exists()


def test_the_environment_row_goes_only_when_no_log_row_is_left(two_environments):
    """The final DELETE never leaves the cascade any log rows to delete."""
    doomed, _ = two_environments
    mark_deleting(doomed)
    assert environment_row_delete(environment_id=doomed.id) is False
    assert Environment.all_objects.filter(pk=doomed.id).exists()
    assert log_rows(doomed.id) > 0


def test_a_live_environment_is_never_purged(two_environments):
    doomed, _ = two_environments
    rows = log_rows(doomed.id)
    with pytest.raises(ValueError, match="not being deleted"):
        environment_purge(environment_id=doomed.id)
    assert log_rows(doomed.id) == rows


def test_every_table_of_an_environment_is_purged_children_before_parents():
    from alerts.models import Alert, AlertRule
    from stream.models import StreamMessage, Subscription

    tables = [model for model, _ in environment_tables()]
    for model in (SendIdempotencyKey, EndUser, RollupDelta, StreamMessage, ApiKey):
        assert model in tables, model
    assert tables.index(StreamMessage) < tables.index(Subscription)
    assert tables.index(Alert) < tables.index(AlertRule)
    assert Notification not in tables  # partition by partition, before these


def lease_held_by_another_worker(tenant: str, *, expires_in: timedelta) -> None:
    PurgeLease.objects.update_or_create(
        tenant=tenant,
        defaults={"holder": uuid.uuid4(), "expires_at": timezone.now() + expires_in},
    )


def test_a_second_purge_of_the_same_tenant_steps_aside(two_environments):
    doomed, _ = two_environments
    mark_deleting(doomed)
    lease_held_by_another_worker(f"environment:{doomed.id}", expires_in=timedelta(minutes=4))
    assert environment_purge(environment_id=doomed.id) is False
    assert log_rows(doomed.id) > 0
    PurgeLease.objects.all().delete()  # the other worker finished (or gave up)
    assert environment_purge(environment_id=doomed.id) is True
    assert not PurgeLease.objects.exists()


def test_a_dead_workers_purge_is_taken_over_once_its_lease_expires(two_environments):
    """A worker killed mid-purge gives nothing back; its lease runs out and the next purge
    (beat's tenant_deletions_resume) finishes the job."""
    doomed, _ = two_environments
    mark_deleting(doomed, account=doomed.account)
    Environment.all_objects.filter(account=doomed.account).update(deleting_at=timezone.now())
    lease_held_by_another_worker(f"account:{doomed.account_id}", expires_in=timedelta(seconds=-1))
    lease_held_by_another_worker(f"environment:{doomed.id}", expires_in=timedelta(seconds=-1))
    assert account_purge(account_id=doomed.account_id, batch_size=1_000) is True
    assert not Environment.all_objects.filter(account_id=doomed.account_id).exists()
    assert log_rows(doomed.id) == 0
    assert not PurgeLease.objects.exists()


@pytest.fixture
def celery_worker(redis_url, transactional_db):
    """A real Celery worker (its own process) on the test database and this Redis."""
    from config.celery import app

    app.control.purge()  # tasks of earlier runs, for tenants of databases long gone
    database = connection.settings_dict
    url = (f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
           f"{database['NAME']}")  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        env={**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url},
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    yield worker
    worker.terminate()
    worker.wait(timeout=30)


def wait_until(condition, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_a_worker_purges_deleted_tenants_and_resumes_lost_ones(two_environments, celery_worker):
    """The admin's deletion enqueues the purge; a deletion whose task was lost (marked, never
    enqueued) is picked up by the resume task beat runs."""
    doomed, kept = two_environments
    kept_rows = log_rows(kept.id)
    lost = EnvironmentFactory()
    notification_create(environment_id=lost.id, notification_type="welcome", user_id="usr_1")
    Environment.all_objects.filter(pk=lost.pk).update(deleting_at=timezone.now())

    environment_delete(environment=doomed)  # committed: enqueued at once
    tenant_deletions_resume_task.delay()

    gone = Environment.all_objects.filter(pk__in=[doomed.pk, lost.pk])
    assert wait_until(lambda: not gone.exists()), "the worker did not finish the purges"
    assert log_rows(doomed.id) == log_rows(lost.id) == 0
    assert log_rows(kept.id) == kept_rows
    assert celery_worker.poll() is None


# --- other tenants keep writing ------------------------------------------------------------------


def _blocked_by(pid: int, holder_pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))", [holder_pid, pid])
        return cursor.fetchone()[0]


@contextlib.contextmanager
def _purge_waiting_at_a_held_row(environment, *, batch_size: int):
    """Start the environment's purge in a thread while another connection holds its newest
    notification locked; yield (outcome, holder_pid) once the purge waits on that row. On
    exit the row is released and the purge finishes: outcome has "purged" or "error"."""
    held = Notification.objects.filter(environment_id=environment.id).latest("created_at")
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid() FROM logs_notification "
            "WHERE id = %s AND created_at = %s FOR UPDATE",
            [held.id, held.created_at],
        )
        [(holder_pid,)] = cursor.fetchall()
    outcome: dict = {}

    def purge() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                outcome["pid"] = cursor.fetchone()[0]
                cursor.execute("SET lock_timeout = 0")  # waits for the held row, however long
            outcome["purged"] = environment_purge(
                environment_id=environment.id, batch_size=batch_size
            )
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=purge)
    thread.start()
    try:
        deadline = time.monotonic() + 120  # a guard against hanging, not a bound on speed
        while not ("pid" in outcome and _blocked_by(outcome["pid"], holder_pid)):
            assert thread.is_alive(), f"the purge ended without reaching the held row {outcome}"
            assert time.monotonic() < deadline, "the purge never reached the held row"
            time.sleep(0.01)
        yield outcome, holder_pid
    finally:
        holder.rollback()
        holder.close()
        thread.join(timeout=120)


def test_writers_of_other_tenants_are_not_held_up_while_a_purge_runs(two_environments):
    """The purge is held in the middle of its last table (another connection holds one of the
    doomed notifications locked, so the batch reaching it waits): by then its events and
    deliveries are gone for everyone (each batch committed, no transaction spans the purge),
    and a writer for another environment inserts notifications (with their Received event)
    under a 1 s lock_timeout: a write the purge held up would be an error. None is lost."""
    skip_on_citus(
        "the held row's lock and the purge's wait on it are on a worker node, where this "
        "test's pg_backend_pid() and lock checks on the coordinator cannot see them"
    )
    doomed, kept = two_environments
    mark_deleting(doomed)
    before = Notification.objects.filter(environment_id=kept.id).count()
    written = []
    with _purge_waiting_at_a_held_row(doomed, batch_size=100) as (outcome, holder_pid):
        children_left = sum(
            model.objects.filter(environment_id=doomed.id).count() for model in (Delivery, Event)
        )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
        try:
            for _ in range(5):
                user_id = f"usr_{uuid.uuid4().hex[:8]}"
                written.append(
                    notification_create(
                        environment_id=kept.id, notification_type="welcome", user_id=user_id
                    )
                )
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        still_under_way = _blocked_by(outcome["pid"], holder_pid)

    assert children_left == 0, "the purge's deleted events and deliveries were not committed"
    assert still_under_way, "the writes must go in while the purge is under way"
    assert outcome.get("purged") is True, outcome
    assert log_rows(doomed.id) == 0
    assert Notification.objects.filter(environment_id=kept.id).count() == before + len(written)


def test_a_purge_under_way_keeps_nothing_in_its_connections_session(two_environments):
    """Behind PgBouncer in transaction mode, consecutive transactions of one worker may run on
    different server connections, and a server connection goes to another client once a
    transaction ends. So between its batches a purge must hold nothing in its session (a
    session-level advisory lock would stay on whichever connection took it, held for ever or
    released under the purge): while it waits in the middle of a batch, the only thing
    marking it as under way is its lease, a row every worker sees."""
    skip_on_citus(
        "the held row's lock and the purge's wait on it are on a worker node, where this "
        "test's pg_backend_pid() and lock checks on the coordinator cannot see them"
    )
    doomed, _ = two_environments
    mark_deleting(doomed)
    with _purge_waiting_at_a_held_row(doomed, batch_size=500) as (outcome, _holder_pid):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT locktype, mode FROM pg_locks WHERE pid = %s AND locktype = 'advisory'",
                [outcome["pid"]],
            )
            advisory = cursor.fetchall()
        lease = PurgeLease.objects.filter(tenant=f"environment:{doomed.id}").first()

    assert advisory == [], "a session-level lock would outlive the purge's transaction"
    assert lease is not None and lease.expires_at > timezone.now()
    assert outcome.get("purged") is True, outcome
    assert not PurgeLease.objects.exists()


def test_deleting_an_environment_with_a_million_rows_finishes_under_the_statement_timeout(
    transactional_db,
):
    """At 10 million sends a day an environment has millions of rows outside the log too
    (idempotency keys, rollup deltas, end users). Deleting its row made the database cascade
    over all of them in one statement, cancelled by the statement timeout every time (and
    its users' personal data stayed). Each table now goes in batches, each committed as in a
    worker, under a timeout lowered so that this million rows is enough to show it."""
    doomed, kept = EnvironmentFactory(), EnvironmentFactory()
    for environment in (doomed, kept):
        series_insert(
            "notifications_sendidempotencykey",
            "environment_id, key, notification_id, request_hash, created_at",
            "%(environment)s, 'key-' || n, md5(n::text)::uuid, '', now()",
            rows=400_000 if environment is doomed else 10,
            environment=environment.pk,
        )
        series_insert(
            "notifications_enduser",
            "environment_id, user_id, email, number, timezone, push_tokens, web_push_tokens, "
            "created_at, updated_at",
            "%(environment)s, 'usr_' || n, 'u' || n || '@example.com', '', '', '[]', '[]', "
            "now(), now()",
            rows=300_000 if environment is doomed else 10,
            environment=environment.pk,
        )
        series_insert(
            "insights_rollupdelta",
            "environment_id, hour, notification_type, channel, template, received, sent, "
            "delivered, failed, ignored, engaged",
            "%(environment)s, date_trunc('hour', now()) - (n / 100) * interval '1 hour', "
            "'welcome', 'email', '', 1, 0, 0, 0, 0, 0",
            rows=300_000 if environment is doomed else 10,
            environment=environment.pk,
        )
    mark_deleting(doomed)
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '1s'")
    try:
        purged = environment_purge(environment_id=doomed.id)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")

    assert purged is True
    assert not Environment.all_objects.filter(pk=doomed.id).exists()
    for model in (SendIdempotencyKey, EndUser, RollupDelta):
        assert not model.objects.filter(environment_id=doomed.id).exists(), model
        assert model.objects.filter(environment_id=kept.id).count() == 10, model
