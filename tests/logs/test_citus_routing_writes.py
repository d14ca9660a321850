"""The write paths of the log on a Citus cluster route every statement to one shard: the send
(the API), a dispatch run, a provider's status callback (Twilio with ?env=, an ESP's without
it, one that came before its Sent), and events recorded of several kinds. Each path runs for
real; every statement it sent to a log table is EXPLAINed and must be a router plan of one
task (tests/citus_plans.py). On plain PostgreSQL they are skipped: there are no shards."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from logs.models import Delivery, Notification
from logs.recording import EventSpec
from logs.services import event_record, events_record, notification_create
from notifications.dispatch import notifications_dispatch
from notifications.models import InAppNotification
from tests.citus_plans import citus, multi_shard_statements_of_a_path  # noqa: F401 (fixture)
from tests.factories import EnvironmentFactory
from tests.notifications.conftest import SECRET, basic
from tests.notifications.factories import ChannelTemplateFactory, NotificationTypeFactory
from tests.webhooks.providers import WEBHOOK_SETTINGS, Postmark, TwilioSms, sent_delivery
from webhooks.message_environments import message_environments
from webhooks.models import InboxEntry, InboxState
from webhooks.services import inbox_process, orphans_adopt

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("citus", "webhook_settings")]


@pytest.fixture(autouse=True)
def sandbox(settings):
    # Sends go to the sandbox, whose callbacks go to a closed port (tests/webhooks covers them).
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    settings.SEND_RETRY_BACKOFF_SECONDS = 0
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"


@pytest.fixture
def webhook_settings(settings):
    for name, value in WEBHOOK_SETTINGS.items():
        setattr(settings, name, value)


def _environment_with_type():
    environment = EnvironmentFactory(client_secret=SECRET)
    notification_type = NotificationTypeFactory(environment=environment, key="order_tracking")
    ChannelTemplateFactory(
        notification_type=notification_type,
        channel="email",
        subject="Order {{ order_id }}",
        html="<p>{{ order_id }}</p>",
        text="",
    )
    ChannelTemplateFactory(
        notification_type=notification_type,
        channel="sms",
        subject="",
        html="",
        text="Order {{ order_id }}",
    )
    ChannelTemplateFactory(
        notification_type=notification_type,
        channel="in_app",
        subject="Order {{ order_id }}",
        html="",
        text="",
    )
    return environment


BODY = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "alice@example.com", "number": "+14155550100"},
    "mergeTags": {"order_id": "A-1"},
}


def _accept(client, environment, capture, body=BODY) -> uuid.UUID:
    """Send through the API without running the dispatch it enqueues."""
    with capture(execute=False):
        response = client.post(
            f"/{environment.client_id}/sender",
            data=json.dumps(body),
            content_type="application/json",
            headers={"authorization": basic(environment.client_id, SECRET)},
        )
    assert response.status_code in (200, 202), response.content
    return uuid.UUID(response.json()["trackingId"])


def _assert_routed(queries) -> None:
    found = multi_shard_statements_of_a_path(queries.captured_queries)
    # The statements' text, shortened, says which they are when one is not routed.
    assert [f"{counts} {sql[:300]}" for sql, counts in found.items()] == []


def test_a_send_through_the_api_runs_on_one_shard(client, django_capture_on_commit_callbacks):
    environment = _environment_with_type()

    with CaptureQueriesContext(connection) as queries:
        _accept(client, environment, django_capture_on_commit_callbacks)

    _assert_routed(queries)


def test_a_send_with_an_idempotency_key_runs_on_one_shard(
    client, django_capture_on_commit_callbacks
):
    environment = _environment_with_type()
    body = {**BODY, "idempotencyKey": f"key-{uuid.uuid4()}"}
    _accept(client, environment, django_capture_on_commit_callbacks, body)

    with CaptureQueriesContext(connection) as queries:  # the repeat finds the first
        _accept(client, environment, django_capture_on_commit_callbacks, body)

    _assert_routed(queries)


def test_a_dispatch_run_of_one_environments_batch_runs_on_one_shard(
    client, django_capture_on_commit_callbacks
):
    environment = _environment_with_type()
    ids = [_accept(client, environment, django_capture_on_commit_callbacks) for _ in range(3)]

    with CaptureQueriesContext(connection) as queries:
        outcomes = notifications_dispatch(notification_ids=ids)

    assert outcomes == ["dispatched"] * 3
    assert Delivery.objects.filter(notification_id__in=ids, state="sent").count() == 6
    # The in-app feed's Delivered, recorded once the Sent is committed.
    assert Delivery.objects.filter(notification_id__in=ids, state="delivered").count() == 3
    _assert_routed(queries)


def test_a_dispatch_batch_across_environments_runs_one_shard_statements(
    client, django_capture_on_commit_callbacks
):
    first, second = _environment_with_type(), _environment_with_type()
    ids = [
        _accept(client, environment, django_capture_on_commit_callbacks)
        for environment in (first, second, first)
    ]

    with CaptureQueriesContext(connection) as queries:
        outcomes = notifications_dispatch(notification_ids=ids)

    assert outcomes == ["dispatched"] * 3
    _assert_routed(queries)


def test_a_dispatch_of_a_request_no_longer_valid_runs_on_one_shard(
    client, django_capture_on_commit_callbacks
):
    environment = _environment_with_type()
    # No channel: the type has no templates and the request forces none.
    NotificationTypeFactory(environment=environment, key="bare")
    [notification_id] = [
        _accept(
            client,
            environment,
            django_capture_on_commit_callbacks,
            {**BODY, "notificationId": "bare"},
        )
    ]

    with CaptureQueriesContext(connection) as queries:
        outcomes = notifications_dispatch(notification_ids=[notification_id])

    assert outcomes == ["dispatched"]
    assert Notification.objects.get(id=notification_id).status == "failure"
    _assert_routed(queries)


def test_the_in_app_feed_and_its_opens_record_on_one_shard(
    client, django_capture_on_commit_callbacks
):
    environment = _environment_with_type()
    body = {**BODY, "forceChannels": ["INAPP_WEB"]}
    notification_id = _accept(client, environment, django_capture_on_commit_callbacks, body)
    notifications_dispatch(notification_ids=[notification_id])
    # As if the worker died before its Delivered: the feed's first fetch records it.
    InAppNotification.objects.update(delivered_at=None)
    feed = f"/{environment.client_id}/users/usr_1/notifications/INAPP_WEB"
    headers = {"authorization": basic(environment.client_id, SECRET)}
    opened = {"trackingIds": [str(notification_id)], "opened": "2026-11-27T10:00:00Z"}

    with CaptureQueriesContext(connection) as queries:
        assert client.get(feed, headers=headers).status_code == 200
        response = client.patch(
            feed, data=json.dumps(opened), content_type="application/json", headers=headers
        )

    assert response.json() == {"updated": 1}
    _assert_routed(queries)


def test_a_scheduled_send_moved_then_deleted_runs_on_one_shard(
    client, django_capture_on_commit_callbacks
):
    environment = _environment_with_type()
    later = timezone.now() + timedelta(days=2)
    body = {**BODY, "schedule": later.isoformat()}
    notification_id = _accept(client, environment, django_capture_on_commit_callbacks, body)
    url = f"/{environment.client_id}/schedule/{notification_id}"
    headers = {"authorization": basic(environment.client_id, SECRET)}
    move = {"schedule": (later + timedelta(hours=1)).isoformat(), "mergeTags": {"order_id": "B"}}

    with CaptureQueriesContext(connection) as queries:
        moved = client.patch(
            url, data=json.dumps(move), content_type="application/json", headers=headers
        )
        deleted = client.delete(url, headers=headers)

    assert (moved.status_code, deleted.status_code) == (200, 200)
    assert Notification.objects.get(id=notification_id).merge_tags == {"order_id": "B"}
    _assert_routed(queries)


def _store(client, request) -> InboxEntry:
    """Post a callback to its receiver (stored, not processed: the test processes it)."""
    before = set(InboxEntry.objects.values_list("id", flat=True))
    response = client.post(**request)
    assert response.status_code == 200, response.content
    [entry] = InboxEntry.objects.exclude(id__in=before)
    return entry


def _email_callback(client) -> tuple[str, InboxEntry]:
    """A new message id and the ESP's callback for it, stored (its URL names no environment)."""
    provider = Postmark()
    message_id = provider.new_message_id()
    return message_id, _store(client, provider.request(message_id, "delivered", timezone.now()))


def _email_sent(environment, message_id: str):
    """A notification whose email the ESP accepted as `message_id` (its Sent recorded)."""
    return sent_delivery(
        environment=environment, channel="email", message_id=message_id, provider="postmark"
    )


def test_a_twilio_callback_naming_its_environment_runs_on_one_shard(client):
    provider = TwilioSms()
    environment = EnvironmentFactory()
    message_id = provider.new_message_id()
    notification = sent_delivery(environment=environment, channel="sms", message_id=message_id)
    request = provider.request(
        message_id, "delivered", timezone.now(), query=f"env={environment.client_id}"
    )
    entry = _store(client, request)

    with CaptureQueriesContext(connection) as queries:
        assert inbox_process(inbox_ids=[entry.id]) == {InboxState.PROCESSED: 1}

    delivery = Delivery.objects.get(notification_id=notification.id)
    assert delivery.state == "delivered"
    _assert_routed(queries)


def test_an_email_callback_without_env_finds_its_environment_and_runs_on_one_shard(client):
    environment = EnvironmentFactory()
    message_id, entry = _email_callback(client)
    notification = _email_sent(environment, message_id)

    with CaptureQueriesContext(connection) as queries:
        assert inbox_process(inbox_ids=[entry.id]) == {InboxState.PROCESSED: 1}

    assert Delivery.objects.get(notification_id=notification.id).state == "delivered"
    entry.refresh_from_db()
    assert entry.environment_id == environment.id
    # The Sent told the coordinator whose message it is (webhooks/message_environments.py).
    assert message_environments([message_id]) == {message_id: [environment.id]}
    _assert_routed(queries)


def test_a_message_id_of_two_environments_without_env_is_rejected_on_one_shard_each(client):
    message_id, entry = _email_callback(client)
    for environment in (EnvironmentFactory(), EnvironmentFactory()):
        _email_sent(environment, message_id)

    with CaptureQueriesContext(connection) as queries:
        assert inbox_process(inbox_ids=[entry.id]) == {InboxState.REJECTED: 1}

    entry.refresh_from_db()
    assert "?env=" in entry.error
    _assert_routed(queries)


def test_a_callback_before_its_sent_is_adopted_and_runs_on_one_shard(
    client, django_capture_on_commit_callbacks
):
    environment = EnvironmentFactory()
    message_id, entry = _email_callback(client)
    notification = notification_create(
        environment_id=environment.id, notification_type="order_tracking", user_id="ada"
    )

    with CaptureQueriesContext(connection) as queries:
        # The message is not known yet: the row waits.
        assert inbox_process(inbox_ids=[entry.id]) == {InboxState.PENDING: 1}
        for kind in ("sending", "sent"):
            with django_capture_on_commit_callbacks(execute=True):
                event_record(
                    notification_id=notification.id,
                    notification_created_at=notification.created_at,
                    environment_id=environment.id,
                    kind=kind,
                    channel="email",
                    source="pipeline",
                    delivery_fields={"provider": "postmark", "provider_message_id": message_id}
                    if kind == "sent"
                    else None,
                )
        # The Sent adopted it (webhooks.apps: on commit, due again now).
        entry.refresh_from_db()
        assert entry.next_attempt_at <= timezone.now()
        assert inbox_process(inbox_ids=[entry.id]) == {InboxState.PROCESSED: 1}

    assert Delivery.objects.get(notification_id=notification.id).state == "delivered"
    _assert_routed(queries)


def test_an_orphaned_callback_is_adopted_by_the_sweep_without_reading_every_shard(
    client, django_capture_on_commit_callbacks
):
    message_id, entry = _email_callback(client)
    inbox_process(inbox_ids=[entry.id])  # parsed: it names its message id, still unknown
    InboxEntry.objects.filter(id=entry.id).update(state=InboxState.ORPHANED)
    _email_sent(EnvironmentFactory(), message_id)

    with CaptureQueriesContext(connection) as queries:
        with django_capture_on_commit_callbacks(execute=False):
            assert orphans_adopt() == 1
        assert inbox_process(inbox_ids=[entry.id]) == {InboxState.PROCESSED: 1}

    _assert_routed(queries)


def test_events_of_several_kinds_are_recorded_on_one_shard():
    environment, other = EnvironmentFactory(), EnvironmentFactory()
    notifications = [
        notification_create(
            environment_id=env.id,
            notification_type="welcome",
            user_id="ada",
            email="ada@example.com",
        )
        for env in (environment, other, environment)
    ]

    def spec(notification, kind, **more):
        return EventSpec(
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            environment_id=notification.environment_id,
            kind=kind,
            source="pipeline",
            **more,
        )

    with CaptureQueriesContext(connection) as queries:
        for notification in notifications:
            event_record(
                notification_id=notification.id,
                environment_id=notification.environment_id,
                kind="sending",
                channel="email",
                source="pipeline",
                delivery_fields={"provider": "sandbox", "subject": "Hi"},
            )
        outcomes = events_record(
            [
                spec(
                    n,
                    "sent",
                    channel="email",
                    dedupe_key="sent:email",
                    delivery_fields={"provider_message_id": f"m-{n.id}"},
                )
                for n in notifications
            ]
            + [spec(notifications[0], "delivered", channel="email", provider_event_id="d1")]
            + [
                spec(
                    notifications[1],
                    "engagement",
                    channel="email",
                    sub_kind="opened",
                    provider_event_id="o1",
                )
            ]
            + [
                spec(
                    notifications[2],
                    "failed",
                    channel="email",
                    sub_kind="bounce",
                    provider_event_id="f1",
                )
            ]
        )
        # The same event again: found, nothing written.
        again = event_record(
            notification_id=notifications[0].id,
            environment_id=environment.id,
            kind="delivered",
            channel="email",
            source="pipeline",
            provider_event_id="d1",
        )

    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert not again.created
    _assert_routed(queries)
