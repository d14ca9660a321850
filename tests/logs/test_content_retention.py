"""Content retention: an environment keeps its notifications' content fewer days than the log;
past it the nightly job clears subjects, bodies, merge tags, the request's content and the
providers' payloads in batches (each its own transaction), keeps the timeline and metadata,
and the console page and the API detail say why the content is gone."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone

from accounts.models import Environment, Membership
from logs import content_retention
from logs.content_retention import content_retention_run, environment_content_clear
from logs.models import Delivery, Event, Notification
from logs.partitions import partitions_ensure
from logs.payloads import event_payload
from logs.selectors import notification_timeline
from logs.services import event_record, notification_create
from tests.accounts.test_admin import page, support_user_of
from tests.console.conftest import SENDER, console_user
from tests.console.test_pages import page_of
from tests.factories import AccountFactory, EnvironmentFactory
from tests.helpers import skip_on_citus
from tests.logs.api.conftest import SECRET, client_for
from tests.logs.test_retention_accounts import _waits_for

NOTICE = "Content cleared after 2 days (content retention)"
BOUNCE_PAYLOAD = {
    "eventType": "Bounce",
    "mail": {"commonHeaders": {"subject": "Your invoice INV-77"}, "destination": ["ada@x.io"]},
}


def _email(environment, created_at, *, user_id="ada"):
    """An invoice email that bounced, as the pipeline and the provider's callback record it."""
    merge_tags = {"amount": "$1,204.00", "invoice": "INV-77"}
    notification = notification_create(
        environment_id=environment.id,
        notification_type="invoice",
        user_id=user_id,
        email="ada@x.io",
        merge_tags=merge_tags,
        request={
            "notificationId": "invoice",
            "templateId": "tpl-2",
            "user": {"id": user_id, "email": "ada@x.io", "pushTokens": [{"token": "t0k"}]},
            "mergeTags": merge_tags,
            "options": {"email": {"attachments": [{"filename": "inv.pdf", "content": "JVBE"}]}},
        },
        created_at=created_at,
    )
    common = {"notification_id": notification.id, "notification_created_at": created_at,
              "channel": "email"}  # fmt: skip
    event_record(
        **common, kind="sending", source="pipeline", occurred_at=created_at,
        payload={"from": SENDER, "to": ["ada@x.io"], "cc": [], "bcc": [], "reply_to": []},
    )  # fmt: skip
    event_record(
        **common,
        kind="sent",
        source="pipeline",
        occurred_at=created_at + timedelta(seconds=1),
        delivery_fields={
            "provider": "amazon_ses",
            "provider_message_id": f"ses-{uuid.uuid4().hex}",
            "destination": "ada@x.io",
            "subject": "Your invoice INV-77",
            "html": "<p>You owe $1,204.00</p>",
            "text": "You owe $1,204.00",
        },
    )
    event_record(
        **common,
        kind="failed",
        sub_kind="bounce",
        source="amazon_ses",
        occurred_at=created_at + timedelta(seconds=2),
        detail="550 5.1.1 user unknown",
        payload=BOUNCE_PAYLOAD,
    )
    return notification


def _content(notification):
    notification.refresh_from_db()
    delivery = Delivery.objects.get(notification_id=notification.id)
    events = notification_timeline(notification=notification)  # rows and folded (Received)
    return {
        "cleared_after": notification.content_cleared_after,
        "merge_tags": notification.merge_tags,
        "request": notification.request,
        "delivery": (delivery.subject, delivery.html, delivery.text),
        "kept": (notification.status, notification.email, delivery.destination, delivery.state),
        "timeline": [(e.kind, e.sub_kind, e.detail) for e in events],
        # As the page reads them, and whether each is stored compressed (logs.payloads).
        "payloads": [event_payload(e) for e in events],
        "packed": [e.payload_packed is not None for e in events],
    }


@pytest.fixture
def days():
    now = timezone.now()
    partitions_ensure(days_ahead=1, start=(now - timedelta(days=5)).date())
    return now


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_content_past_the_retention_is_cleared_and_the_timeline_and_metadata_stay(days):
    environment = EnvironmentFactory(content_retention_days=2)
    old = _email(environment, days - timedelta(days=3))
    recent = _email(environment, days - timedelta(days=1, hours=23))
    old_before, recent_before = _content(old), _content(recent)

    [run] = content_retention_run(batch_size=1)

    cleared = _content(old)
    assert cleared["cleared_after"] == 2
    assert cleared["merge_tags"] == {}
    assert cleared["delivery"] == ("", "", "")
    # What was sent to whom stays; the content, the push token and the attachment go.
    assert cleared["request"] == {
        "notificationId": "invoice",
        "templateId": "tpl-2",
        "user": {"id": "ada", "email": "ada@x.io"},
    }
    assert cleared["kept"] == ("failure", "ada@x.io", "ada@x.io", "failed")
    assert cleared["timeline"] == old_before["timeline"]
    assert cleared["timeline"][-1] == ("failed", "bounce", "550 5.1.1 user unknown")
    # The provider's callback (it quotes the subject) goes; the pipeline's envelope stays.
    assert cleared["payloads"][1]["from"] == SENDER
    assert old_before["payloads"][3] == BOUNCE_PAYLOAD and old_before["packed"][3]
    assert cleared["payloads"][3] is None and not cleared["packed"][3]
    assert _content(recent) == recent_before
    assert recent_before["delivery"][0] == "Your invoice INV-77"
    assert (run.cleared, run.left) == (1, 0)


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_other_environments_and_the_default_keep_their_content(days):
    """Tenant isolation: only the environment that set a content retention loses content,
    not another environment of the same account nor another account's."""
    short = EnvironmentFactory(content_retention_days=2)
    same_account = EnvironmentFactory(account=short.account)
    other = EnvironmentFactory(account=AccountFactory())
    three_days_ago = days - timedelta(days=3)
    mine = _email(short, three_days_ago)
    untouched = [_email(same_account, three_days_ago), _email(other, three_days_ago)]
    before = [_content(n) for n in untouched]

    runs = content_retention_run()

    assert [run.environment_id for run in runs] == [short.id]
    assert _content(mine)["cleared_after"] == 2
    assert [_content(n) for n in untouched] == before
    assert before[0]["cleared_after"] is None and before[0]["merge_tags"]


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_nothing_is_cleared_by_default(days):
    environment = EnvironmentFactory()
    assert environment.content_retention_days is None
    old = _email(environment, days - timedelta(days=6))
    before = _content(old)

    assert content_retention_run() == []
    assert _content(old) == before


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_the_console_page_and_the_api_detail_say_why_the_content_is_empty(client, days):
    environment = EnvironmentFactory(content_retention_days=2, client_secret=SECRET)
    old = _email(environment, days - timedelta(days=3))
    recent = _email(environment, days - timedelta(hours=1))
    content_retention_run()
    client.force_login(console_user(environment))

    shown = client.get(page_of(old)).content.decode()
    assert NOTICE in shown
    assert "INV-77" not in shown and "1,204" not in shown
    assert "550 5.1.1 user unknown" in shown  # the timeline stays
    assert "Resend" not in shown
    recent_page = client.get(page_of(recent)).content.decode()
    assert NOTICE not in recent_page and "Your invoice INV-77" in recent_page

    resent = client.post(page_of(old).replace("change/", "resend/"), follow=True)
    assert f"This notification cannot be resent: {NOTICE}" in page(resent)
    assert Notification.objects.filter(environment=environment).count() == 2

    detail = client_for(environment).get(f"/api/v1/logs/{old.id}").json()
    assert detail["contentCleared"] == NOTICE
    assert detail["deliveries"][0]["subject"] == "" and detail["mergeTags"] == {}
    assert [line["label"] for line in detail["timeline"]][-1] == "Failed - Bounce"
    assert client_for(environment).get(f"/api/v1/logs/{recent.id}").json()["contentCleared"] is None


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_a_second_run_changes_nothing_and_a_later_one_carries_on(days):
    environment = EnvironmentFactory(content_retention_days=2)
    old = _email(environment, days - timedelta(days=3))
    content_retention_run()
    environment.refresh_from_db()
    assert environment.content_cleared_through_id == old.id

    assert [run.cleared for run in content_retention_run()] == [0]
    later = _email(environment, days - timedelta(days=1))
    assert [run.cleared for run in content_retention_run(now=days + timedelta(days=2))] == [1]
    assert _content(later)["cleared_after"] == 2


def _held(row):
    """Another connection holding a notification's or a delivery's row locked (FOR UPDATE)
    until closed, as a callback being recorded holds it; and that connection's pid."""
    table, day = row._meta.db_table, "notification_created_at"
    if isinstance(row, Notification):
        day = "created_at"
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        # The environment too: Citus locks rows only with a statement on one shard.
        cursor.execute(
            f"SELECT pg_backend_pid() FROM {table} WHERE environment_id = %s AND id = %s "
            f"AND {day} = %s FOR UPDATE",
            [row.environment_id, row.id, getattr(row, day)],
        )
        [(pid,)] = cursor.fetchall()
    return holder, pid


@pytest.mark.django_db(transaction=True)
@override_settings(LOG_RETENTION_DAYS=7)
def test_a_locked_notification_is_left_for_the_next_run_and_the_others_are_cleared(days):
    environment = EnvironmentFactory(content_retention_days=2)
    old = [_email(environment, days - timedelta(days=3, minutes=m)) for m in range(5)]
    held = old[2]
    holder, _ = _held(held)
    try:
        started = time.monotonic()
        [run] = content_retention_run(batch_size=2)
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()

    assert (run.cleared, run.left) == (4, 1)
    assert [_content(n)["cleared_after"] for n in old] == [2, 2, None, 2, 2]
    assert waited < 5, "the run waited for the held row instead of passing it by"
    # The watermark stopped before the batch that skipped it: the next run resumes there.
    environment.refresh_from_db()
    assert environment.content_cleared_through < held.created_at

    [run] = content_retention_run(batch_size=2)
    assert (run.cleared, run.left) == (1, 0)
    assert _content(held)["cleared_after"] == 2
    environment.refresh_from_db()
    assert environment.content_cleared_through_id == old[0].id  # the newest of them


@pytest.mark.django_db(transaction=True)
@override_settings(LOG_RETENTION_DAYS=7)
def test_batches_commit_one_by_one_while_writers_go_on(days, monkeypatch):
    """While a run waits inside a batch (a delivery another connection holds locked, the run's
    lock timeout lifted), a third connection sees the earlier batches committed and records an
    event on another old notification of the same day under a 1 s lock_timeout."""
    skip_on_citus(
        "the held row's lock and the run's wait on it are on a worker node, where this test's "
        "pg_backend_pid() and lock checks on the coordinator cannot see them"
    )
    environment = EnvironmentFactory(content_retention_days=2)
    old = [_email(environment, days - timedelta(days=3, minutes=m)) for m in range(6)]
    # Oldest first: old[5], old[4], ... The held delivery is old[2]'s, in the third batch.
    holder, holder_pid = _held(Delivery.objects.get(notification_id=old[2].id))
    monkeypatch.setattr(content_retention, "CONTENT_LOCK_TIMEOUT_MS", 60_000)
    outcome = {}

    def run():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                outcome["pid"] = cursor.fetchone()[0]
            outcome["runs"] = content_retention_run(batch_size=2)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 60  # a guard against hanging, not a bound on speed
        while not ("pid" in outcome and _waits_for(outcome["pid"], holder_pid)):
            assert thread.is_alive(), "the run ended without reaching the held row"
            assert time.monotonic() < deadline, "the run never reached the held row"
            time.sleep(0.01)
        cleared = [_content(n)["cleared_after"] for n in old]
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
        try:
            event_record(
                notification_id=old[0].id, notification_created_at=old[0].created_at,
                channel="email", kind="engagement", sub_kind="opened", source="amazon_ses",
            )  # fmt: skip
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        still_waiting = _waits_for(outcome["pid"], holder_pid)
    finally:
        holder.rollback()
        holder.close()
        thread.join(60)

    assert cleared == [None, None, None, None, 2, 2], "the first batch was not committed alone"
    assert still_waiting, "the write must go in while the run is under way"
    assert [r.cleared for r in outcome["runs"]] == [6]
    assert Event.objects.filter(notification_id=old[0].id, kind="engagement").count() == 1


@pytest.mark.django_db(transaction=True)
@override_settings(LOG_RETENTION_DAYS=7)
def test_a_batch_that_meets_a_held_delivery_gives_way_and_the_next_run_clears_it(days):
    environment = EnvironmentFactory(content_retention_days=2)
    old = [_email(environment, days - timedelta(days=3, minutes=m)) for m in range(4)]
    holder, _ = _held(Delivery.objects.get(notification_id=old[1].id))
    try:
        [run] = content_retention_run(batch_size=2)  # old[3], old[2] | old[1], old[0]
    finally:
        holder.rollback()
        holder.close()
    assert (run.cleared, run.left) == (2, 2)
    assert [_content(n)["cleared_after"] for n in old] == [None, None, 2, 2]

    [run] = content_retention_run(batch_size=2)
    assert (run.cleared, run.left) == (2, 0)
    assert [_content(n)["cleared_after"] for n in old] == [2, 2, 2, 2]


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
@pytest.mark.parametrize(
    ("days", "account_days", "error"),
    [
        (7, None, "Must be fewer days than the log's retention (7 days)"),
        (3, 3, "Must be fewer days than the log's retention (3 days)"),
        (0, None, "greater than or equal to 1"),
    ],
)
def test_a_content_retention_not_shorter_than_the_logs_is_refused(days, account_days, error):
    environment = EnvironmentFactory(account=AccountFactory(retention_days=account_days))
    environment.content_retention_days = days
    with pytest.raises(ValidationError) as refused:
        environment.full_clean()
    assert error in " ".join(refused.value.message_dict["content_retention_days"])
    environment.content_retention_days = 6 if account_days is None else account_days - 1
    environment.full_clean()


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_an_account_retention_not_longer_than_an_environments_content_retention_is_refused():
    environment = EnvironmentFactory(name="production", content_retention_days=3)
    account = environment.account
    account.retention_days = 3
    with pytest.raises(ValidationError) as refused:
        account.full_clean()
    assert refused.value.message_dict["retention_days"] == [
        "Its environments' content retention must stay shorter than the logs' 3 days: lower "
        "it first in production (3)."
    ]
    account.retention_days = 4
    account.full_clean()


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_admins_set_it_in_the_environment_form_and_a_bad_value_is_explained(client):
    environment = EnvironmentFactory()
    client.force_login(
        support_user_of(environment.account, "change_environment", role=Membership.Role.ADMIN)
    )
    url = f"/admin/accounts/environment/{environment.id}/change/"
    form = {"account": environment.account_id, "name": environment.name}
    assert 'name="content_retention_days"' in client.get(url).content.decode()

    refused = client.post(url, {**form, "content_retention_days": "7"})
    assert refused.status_code == 200
    assert "fewer days than the log's retention (7 days)" in page(refused)
    assert client.post(url, {**form, "content_retention_days": "3"}).status_code == 302
    assert Environment.objects.get(pk=environment.pk).content_retention_days == 3


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_the_nightly_task_clears_and_is_scheduled(days, settings):
    from logs.tasks import content_retention_task

    environment = EnvironmentFactory(content_retention_days=2)
    old = _email(environment, days - timedelta(days=3))

    assert content_retention_task.apply().get() == 1
    assert _content(old)["cleared_after"] == 2
    schedule = settings.CELERY_BEAT_SCHEDULE["logs-content-retention"]
    assert schedule["task"] == "logs.tasks.content_retention_task"


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_a_run_past_many_batches_clears_each_environment_once(days):
    environment = EnvironmentFactory(content_retention_days=1)
    old = [_email(environment, days - timedelta(days=2, minutes=m)) for m in range(7)]
    assert environment_content_clear(environment=environment, batch_size=3).cleared == 7
    assert {_content(n)["cleared_after"] for n in old} == {1}
    environment.refresh_from_db()
    assert environment_content_clear(environment=environment, batch_size=3).cleared == 0


@pytest.mark.django_db
@override_settings(LOG_RETENTION_DAYS=7)
def test_a_run_past_its_deadline_stops_between_batches_and_the_next_carries_on(days):
    first = EnvironmentFactory(content_retention_days=2)
    second = EnvironmentFactory(content_retention_days=2)
    old = [_email(first, days - timedelta(days=3, minutes=m)) for m in range(5)]
    others = _email(second, days - timedelta(days=3))

    runs = content_retention_run(batch_size=2, until=0)  # long passed: one batch, then stop

    assert [(r.environment_id, r.cleared, r.finished) for r in runs] == [
        (first.id, 2, False),
        (second.id, 0, False),
    ]
    assert [_content(n)["cleared_after"] for n in old] == [None, None, None, 2, 2]
    assert _content(others)["cleared_after"] is None
    runs = content_retention_run(batch_size=2)
    assert [(r.cleared, r.finished) for r in runs] == [(3, True), (1, True)]
    assert {_content(n)["cleared_after"] for n in [*old, others]} == {2}
