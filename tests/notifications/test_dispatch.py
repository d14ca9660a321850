"""Dispatch through the sandbox and the in-app feed: the order of the checks (dashboard →
user preference → plan limit), rendering, missing addresses, and re-runs."""

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Account
from logs.content import DeliveryContent
from logs.vocabulary import Channel
from notifications.dispatch import notification_dispatch
from notifications.models import InAppNotification, Outbox, PlanUsage, SandboxMessage
from tests.helpers import skip_on_citus, smtp_server
from tests.notifications.factories import ChannelTemplateFactory, UserPreferenceFactory
from tests.notifications.helpers import delivery, labels, refreshed, send, sent, timeline

pytestmark = pytest.mark.django_db

BODY = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "alice@example.com", "number": "+14155550100"},
    "mergeTags": {"first_name": "Alice", "order_id": "A-1"},
}


@pytest.fixture(autouse=True)
def sandbox(settings):
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    settings.SEND_RETRY_BACKOFF_SECONDS = 0


def accept(client, environment, auth, capture) -> str:
    """Send without running the dispatch it enqueues; returns the tracking id."""
    with capture(execute=False):
        response = client.post(
            f"/{environment.client_id}/sender",
            data=BODY,
            content_type="application/json",
            headers=auth,
        )
    return response.json()["trackingId"]


def test_every_channel_goes_received_sending_sent_with_content_as_sent(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    notification = send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    for channel in (Channel.EMAIL, Channel.SMS):
        assert labels(notification, channel) == ["Sending", "Sent"], channel
    # In-app is Delivered as soon as the item is in the user's feed.
    assert labels(notification, Channel.IN_APP) == ["Sending", "Sent", "Delivered"]
    email = delivery(notification, Channel.EMAIL)
    assert sent(notification, Channel.EMAIL) == DeliveryContent(
        "Order A-1 shipped",
        "<p>Hi Alice, order A-1 is on its way.</p>",
        "Hi Alice, order A-1 is on its way.",
    )
    # Sent to the notification's own address: not stored again, read from it.
    assert (email.destination, email.destination_of(notification)) == ("", "alice@example.com")
    assert email.provider == "sandbox" and email.provider_message_id.startswith("sbx-")
    # The Sent line does not copy the message id its delivery holds.
    sent_lines = [e for e in timeline(notification) if e[:2] == ("Sent", Channel.EMAIL)]
    assert sent_lines == [("Sent", Channel.EMAIL, "Accepted by sandbox.")]
    sms = delivery(notification, Channel.SMS)
    assert (sent(notification, Channel.SMS).text, sms.destination_of(notification)) == (
        "Order A-1 shipped",
        "+14155550100",
    )
    accepted = SandboxMessage.objects.filter(notification_id=notification.id)
    assert sorted(accepted.values_list("channel", flat=True)) == ["email", "sms"]
    item = InAppNotification.objects.get(notification_id=notification.id)
    assert (item.user_id, item.title) == ("usr_1", "Order A-1 shipped")
    assert not Outbox.objects.exists()
    assert timeline(notification)[0][0] == "Received"


def test_replace_applies_after_merge_tags(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    body = {**BODY, "replace": {"A-1": "B-2", "Alice": "Al"}, "forceChannels": ["EMAIL"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert sent(notification, Channel.EMAIL).subject == "Order B-2 shipped"
    assert sent(notification, Channel.EMAIL).text == "Hi Al, order B-2 is on its way."


def test_inline_content_overrides_the_template(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    body = {
        **BODY,
        "forceChannels": ["EMAIL", "SMS"],
        "email": {"subject": "Hey {{ first_name }}", "html": "<b>{{ order_id }}</b>"},
        "sms": {"message": "SMS for {{ first_name }}"},
    }
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert sent(notification, Channel.EMAIL) == DeliveryContent("Hey Alice", "<b>A-1</b>", "A-1")
    assert sent(notification, Channel.SMS).text == "SMS for Alice"


def test_disabled_channel_is_ignored_dashboard_preference(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    order_tracking.templates.filter(channel=Channel.SMS).update(enabled=False)
    notification = send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    assert labels(notification, Channel.SMS) == ["Ignored - Dashboard Preference"]
    assert labels(notification, Channel.EMAIL) == ["Sending", "Sent"]


def test_user_preference_off_ignores_that_channel_only(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    UserPreferenceFactory(
        environment=environment,
        user_id="usr_1",
        notification_type="order_tracking",
        channel=Channel.EMAIL,
    )
    notification = send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    assert labels(notification, Channel.EMAIL) == ["Ignored - User Preference"]
    assert labels(notification, Channel.SMS) == ["Sending", "Sent"]


def test_sub_notification_preference_beats_the_type_wide_one(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    UserPreferenceFactory(
        environment=environment, user_id="usr_1", notification_type="order_tracking", delivery="off"
    )
    UserPreferenceFactory(
        environment=environment,
        user_id="usr_1",
        delivery="instant",
        notification_type="order_tracking",
        sub_notification_id="proj-1",
    )
    body = {**BODY, "forceChannels": ["EMAIL"], "subNotificationId": "proj-1"}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert labels(notification, Channel.EMAIL) == ["Sending", "Sent"]
    other = send(
        client,
        environment,
        auth,
        {**body, "subNotificationId": "proj-2"},
        django_capture_on_commit_callbacks,
    )
    assert labels(other, Channel.EMAIL) == ["Ignored - User Preference"]


def test_dashboard_flag_is_checked_before_the_user_preference(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    order_tracking.templates.filter(channel=Channel.EMAIL).update(enabled=False)
    UserPreferenceFactory(
        environment=environment, user_id="usr_1", notification_type="order_tracking"
    )
    notification = send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    assert labels(notification, Channel.EMAIL) == ["Ignored - Dashboard Preference"]
    assert labels(notification, Channel.SMS) == ["Ignored - User Preference"]


def test_plan_limit_counts_each_notification_once_then_ignores(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    Account.objects.filter(pk=environment.account_id).update(plan_monthly_limit=2)
    sends = [
        send(client, environment, auth, BODY, django_capture_on_commit_callbacks) for _ in range(3)
    ]
    assert labels(sends[1], Channel.EMAIL) == ["Sending", "Sent"]
    for channel in (Channel.EMAIL, Channel.SMS, Channel.IN_APP):
        assert labels(sends[2], channel) == ["Ignored - Plan Limit"]
    assert PlanUsage.objects.get(account_id=environment.account_id).notifications == 2
    assert refreshed(sends[2]).status == "success"  # every channel ignored


def test_render_error_fails_the_channel_naming_the_tag(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    body = {**BODY, "mergeTags": {"first_name": "Alice"}, "forceChannels": ["EMAIL"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    [(label, _, detail)] = [e for e in timeline(notification) if e[1] == Channel.EMAIL]
    assert label == "Failed"
    assert detail == "Template error in the subject: 'order_id' is undefined."
    assert refreshed(notification).status == "failure"
    assert not SandboxMessage.objects.exists()


def test_missing_address_fails_naming_the_field(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    body = {**BODY, "user": {"id": "usr_2"}}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    email = [e for e in timeline(notification) if e[1] == Channel.EMAIL]
    sms = [e for e in timeline(notification) if e[1] == Channel.SMS]
    assert email[0][0] == "Failed" and "No user.email for user 'usr_2'" in email[0][2]
    assert sms[0][0] == "Failed" and "No user.number for user 'usr_2'" in sms[0][2]
    assert labels(notification, Channel.IN_APP) == ["Sending", "Sent", "Delivered"]


def test_push_fails_with_no_provider_configured(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    ChannelTemplateFactory(notification_type=order_tracking, channel=Channel.PUSH)
    body = {**BODY, "forceChannels": ["PUSH", "WEB_PUSH"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert [e[2] for e in timeline(notification) if e[1] == Channel.PUSH] == [
        "no provider configured for this channel"
    ]
    assert labels(notification, Channel.WEB_PUSH) == ["Failed"]


def test_sandbox_reject_address_fails_at_send(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    body = {**BODY, "user": {"id": "u", "email": "reject@example.com"}, "forceChannels": ["EMAIL"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert labels(notification, Channel.EMAIL) == ["Sending", "Failed"]
    assert delivery(notification, Channel.EMAIL).error_code == "rejected"


def test_dispatch_twice_sends_once(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    notification = send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    assert notification_dispatch(notification_id=notification.id).startswith("nothing to do")
    # Even with its outbox row back (a redelivered task after a crash), done channels stay.
    Outbox.objects.create(
        notification_id=notification.id,
        environment=environment,
        notification_created_at=notification.created_at,
        due_at=notification.created_at,
        next_sweep_at=notification.created_at,
    )
    assert notification_dispatch(notification_id=notification.id) == "dispatched"
    assert SandboxMessage.objects.filter(notification_id=notification.id).count() == 2
    assert labels(notification, Channel.EMAIL) == ["Sending", "Sent"]


def test_a_type_without_templates_fails_the_request_not_hangs(
    client, environment, auth, django_capture_on_commit_callbacks
):
    from tests.notifications.factories import NotificationTypeFactory

    NotificationTypeFactory(environment=environment, key="empty")
    body = {"notificationId": "empty", "user": {"id": "u"}}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert [label for label, _, _ in timeline(notification)] == ["Received", "Failed"]
    assert refreshed(notification).status == "failure"
    assert not Outbox.objects.exists()


def test_a_notification_another_worker_holds_is_left_alone(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    """Two workers never dispatch one notification at once: the second finds it claimed."""
    tracking_id = accept(client, environment, auth, django_capture_on_commit_callbacks)
    Outbox.objects.filter(notification_id=tracking_id).update(
        claimed_by=uuid.uuid4(), claimed_until=timezone.now() + timedelta(seconds=60)
    )
    assert notification_dispatch(notification_id=uuid.UUID(tracking_id)).startswith("busy")
    assert not SandboxMessage.objects.exists()
    assert Outbox.objects.filter(notification_id=tracking_id).exists()


def test_a_dead_workers_claim_runs_out_and_another_worker_sends(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    tracking_id = accept(client, environment, auth, django_capture_on_commit_callbacks)
    Outbox.objects.filter(notification_id=tracking_id).update(
        claimed_by=uuid.uuid4(), claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert notification_dispatch(notification_id=uuid.UUID(tracking_id)) == "dispatched"
    assert SandboxMessage.objects.filter(notification_id=tracking_id).count() == 2
    assert not Outbox.objects.exists()


def _advisory_locks_in_this_database() -> int:
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        return other.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()[0]


def test_a_dispatch_holds_no_session_lock_across_the_provider_call(
    client, environment, auth, order_tracking, settings, django_capture_on_commit_callbacks
):
    """Behind a pooler in transaction mode the connection between two transactions is not
    the worker's: a session lock held across the provider call would stay on a server
    connection another client gets. While the email is being handed to SMTP, no advisory
    lock is held in this database."""
    skip_on_citus(
        "Citus itself holds advisory locks on the coordinator (its shard locks) while a "
        "distributed write runs"
    )
    seen = []
    with smtp_server(settings, email_provider=True) as inbox:
        keep = inbox.handle_DATA

        async def handle_data(server, session, envelope):
            seen.append(await asyncio.to_thread(_advisory_locks_in_this_database))
            return await keep(server, session, envelope)

        inbox.handle_DATA = handle_data
        tracking_id = accept(client, environment, auth, django_capture_on_commit_callbacks)
        assert notification_dispatch(notification_id=uuid.UUID(tracking_id)) == "dispatched"
    assert len(inbox.messages) == 1
    assert seen == [0]


def _scheduled(client, environment, auth) -> uuid.UUID:
    """A send scheduled an hour ahead (committed; nothing dispatched), then made due now:
    the tests that need other connections to see it run outside the test's transaction."""
    when = timezone.now() + timedelta(hours=1)
    response = client.post(
        f"/{environment.client_id}/sender", data={**BODY, "schedule": when.isoformat()},
        content_type="application/json", headers=auth,
    )  # fmt: skip
    tracking_id = uuid.UUID(response.json()["trackingId"])
    assert Outbox.objects.filter(notification_id=tracking_id).update(due_at=timezone.now()) == 1
    return tracking_id


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_claim_was_taken_sends_nothing_more(
    client, environment, auth, order_tracking, settings
):
    """A worker that overran its lease finds, before its next provider call, that another
    worker took the notification over, and stops: the remaining channels are the other's."""
    import psycopg
    from django.db import connection

    tracking_id = _scheduled(client, environment, auth)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)

    def take_over():
        with psycopg.connect(**params, autocommit=True) as other_worker:
            other_worker.execute(
                "UPDATE notifications_outbox SET claimed_by = %s WHERE notification_id = %s",
                [uuid.uuid4(), tracking_id],
            )

    with smtp_server(settings, email_provider=True) as inbox:
        keep = inbox.handle_DATA

        async def handle_data(server, session, envelope):
            # While the email is with the SMTP server, another worker claims the row.
            await asyncio.to_thread(take_over)
            return await keep(server, session, envelope)

        inbox.handle_DATA = handle_data
        outcome = notification_dispatch(notification_id=tracking_id)
    assert outcome.startswith("claim lost")
    assert len(inbox.messages) == 1  # the email, sent before the claim was taken
    assert not SandboxMessage.objects.filter(notification_id=tracking_id).exists()  # the SMS
    assert Outbox.objects.filter(notification_id=tracking_id).exists()


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_send_each_channel_once(
    client, environment, auth, order_tracking, settings
):
    """Two workers take the same notification at the same moment (a task delivered twice):
    one dispatches, the other finds it claimed or done; every channel is sent once."""
    from django.db import connection

    settings.SANDBOX_SEND_DELAY_SECONDS = 0.3
    tracking_id = _scheduled(client, environment, auth)
    start = threading.Barrier(2)

    def worker(_):
        start.wait()
        try:
            return notification_dispatch(notification_id=tracking_id)
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(worker, range(2)))
    assert "dispatched" in outcomes, outcomes
    assert SandboxMessage.objects.filter(notification_id=tracking_id).count() == 2, outcomes


def test_nothing_is_sent_for_an_environment_being_deleted(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    from accounts.deletion import environment_delete

    tracking_id = accept(client, environment, auth, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        environment_delete(environment=environment)
    assert notification_dispatch(notification_id=uuid.UUID(tracking_id)) == (
        "environment being deleted"
    )
    assert not SandboxMessage.objects.exists()
    assert not Outbox.objects.exists()
