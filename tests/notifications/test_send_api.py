"""POST /{clientId}/sender and POST /api/v1/notifications: what is accepted, what is
refused with which message, and that a refused request writes nothing."""

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from logs.models import Delivery, Event, Notification
from logs.selectors import notification_timeline
from notifications.models import EndUser, Outbox, SendIdempotencyKey
from tests.notifications.conftest import SECRET, basic

pytestmark = pytest.mark.django_db


def sender_url(environment) -> str:
    return f"/{environment.client_id}/sender"


def post(client, url, body, headers, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", headers=headers, **extra)


SEND = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "alice@example.com", "number": "(415) 555-0100"},
    "mergeTags": {"first_name": "Alice", "order_id": "A-1"},
}


def nothing_written():
    return not Notification.objects.exists() and not Outbox.objects.exists()


def test_send_answers_200_with_tracking_id_and_writes_notification_event_outbox(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(client, sender_url(environment), SEND, auth)
    assert response.status_code == 200, response.content
    tracking_id = uuid.UUID(response.json()["trackingId"])
    notification = Notification.objects.get(id=tracking_id)
    assert notification.environment_id == environment.id
    assert (notification.user_id, notification.email, notification.number) == (
        "usr_1",
        "alice@example.com",
        "+14155550100",
    )
    assert notification.merge_tags == SEND["mergeTags"]
    assert notification.request == SEND
    # The Received is folded into the notification (logs.timeline): no event row.
    assert not Event.objects.filter(notification_id=tracking_id).exists()
    assert [e.kind for e in notification_timeline(notification=notification)] == ["received"]
    assert Outbox.objects.filter(notification_id=tracking_id).exists()
    assert len(callbacks) == 1  # the dispatch enqueue, on commit


def test_newer_spelling_type_to_parameters_is_accepted(client, environment, auth, order_tracking):
    body = {
        "type": "order_tracking",
        "to": {"id": "usr_2"},
        "parameters": {"order_id": "B", "first_name": "Bo"},
    }
    response = post(client, sender_url(environment), body, auth)
    assert response.status_code == 200, response.content
    notification = Notification.objects.get(id=response.json()["trackingId"])
    assert notification.user_id == "usr_2"
    assert notification.merge_tags == {"order_id": "B", "first_name": "Bo"}


def test_native_endpoint_answers_201_with_location(client, environment, auth, order_tracking):
    response = post(client, "/api/v1/notifications", SEND, auth)
    assert response.status_code == 201, response.content
    tracking_id = response.json()["trackingId"]
    assert response["Location"] == f"/api/v1/notifications/{tracking_id}"
    assert Notification.objects.filter(id=tracking_id).exists()


def test_unknown_template_id_answers_202_with_a_warning(client, environment, auth, order_tracking):
    response = post(client, sender_url(environment), {**SEND, "templateId": "nope"}, auth)
    assert response.status_code == 202
    assert "templateId 'nope' does not exist" in response.json()["messages"][0]
    assert Notification.objects.filter(id=response.json()["trackingId"]).exists()


def test_send_fills_addresses_from_the_identified_user(client, environment, auth, order_tracking):
    EndUser.objects.create(
        environment=environment, user_id="usr_9", email="known@example.com", number="+14155550111"
    )
    response = post(client, sender_url(environment), {**SEND, "user": {"id": "usr_9"}}, auth)
    notification = Notification.objects.get(id=response.json()["trackingId"])
    assert (notification.email, notification.number) == ("known@example.com", "+14155550111")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "The body is not valid JSON"),
        ("", "The body is empty"),
        ("[1, 2]", "The request body must be a JSON object, got an array."),
        ({"user": {"id": "u"}}, "notificationId is required"),
        ({"notificationId": "order_tracking"}, "user is required"),
        ({"notificationId": "order_tracking", "user": {}}, "user.id is required"),
        ({"notificationId": "order_tracking", "user": {"id": 5}}, "user.id must be a string"),
        ({**SEND, "forceChannels": ["FAX"]}, "forceChannels[0]: unknown channel 'FAX'"),
        ({**SEND, "schedule": "tomorrow"}, "schedule 'tomorrow' is not an ISO-8601 time"),
        ({**SEND, "schedule": "2030-01-01T10:00:00"}, "has no time zone"),
        ({**SEND, "user": {"id": "u", "number": "12"}}, "user.number: '12'"),
        ({**SEND, "user": {"id": "u", "email": "not-an-address"}}, "user.email 'not-an-address'"),
        ({**SEND, "user": {"id": "u", "timezone": "Mars/Base"}}, "user.timezone 'Mars/Base'"),
        ({**SEND, "mergeTags": ["a"]}, "mergeTags must be a JSON object, got an array."),
        (
            {"type": "order_tracking", "to": {"id": "u"}, "parameters": "x"},
            "parameters must be a JSON object",
        ),
        ({**SEND, "replace": {"a": 1}}, "replace['a'] must be a string"),
        ({**SEND, "options": {"email": {"ccAddresses": ["x"]}}}, "options.email.ccAddresses[0]"),
        ({**SEND, "email": "hello"}, "email must be a JSON object, got a string."),
    ],
)
def test_bad_input_answers_400_naming_the_field_and_writes_nothing(
    client, environment, auth, order_tracking, body, message
):
    response = post(client, sender_url(environment), body, auth)
    assert response.status_code == 400, response.content
    assert message in response.json()["message"]
    assert nothing_written()


def test_body_over_one_megabyte_answers_400(client, environment, auth, order_tracking):
    body = {**SEND, "mergeTags": {"blob": "x" * (1024 * 1024)}}
    response = post(client, sender_url(environment), body, auth)
    assert response.status_code == 400
    assert "over 1,048,576 bytes (1 MB)" in response.json()["message"]
    assert nothing_written()


def test_unknown_notification_id_answers_404_with_close_matches(
    client, environment, auth, order_tracking
):
    response = post(
        client, sender_url(environment), {**SEND, "notificationId": "order_trackin"}, auth
    )
    assert response.status_code == 404
    assert "Did you mean 'order_tracking'?" in response.json()["message"]
    assert nothing_written()


def test_bad_credentials_answer_401(client, environment, order_tracking):
    for headers in ({}, {"authorization": basic(environment.client_id, "wrong")}):
        response = post(client, sender_url(environment), SEND, headers)
        assert response.status_code == 401
        assert response.json()["message"]
        assert response["WWW-Authenticate"].startswith("Basic ")  # what to send instead
    assert nothing_written()


def test_other_methods_on_the_send_endpoints_answer_405(client, environment):
    auth = {"HTTP_AUTHORIZATION": basic(environment.client_id, SECRET)}
    for url in (sender_url(environment), "/api/v1/notifications"):
        response = client.get(url, **auth)
        assert response.status_code == 405
        assert "GET" in response.json()["message"]


def test_credentials_of_another_environment_answer_401(client, environment, order_tracking):
    response = post(
        client, "/someoneelse/sender", SEND, {"authorization": basic(environment.client_id, SECRET)}
    )
    assert response.status_code == 401
    assert nothing_written()


def test_api_key_without_send_scope_answers_403(client, environment, read_only_key, order_tracking):
    headers = {"authorization": f"Bearer {read_only_key.plain}"}
    response = post(client, sender_url(environment), SEND, headers)
    assert response.status_code == 403
    assert "'send' scope" in response.json()["message"]
    assert nothing_written()


def test_api_key_with_send_scope_sends(client, environment, send_only_key, order_tracking):
    headers = {"authorization": basic(environment.client_id, send_only_key.plain)}
    assert post(client, sender_url(environment), SEND, headers).status_code == 200
    headers = {"authorization": f"Bearer {send_only_key.plain}"}
    assert post(client, "/api/v1/notifications", SEND, headers).status_code == 201


def test_idempotency_key_repeat_answers_the_first_tracking_id_and_sends_nothing_again(
    client, environment, auth, order_tracking
):
    headers = {**auth, "idempotency-key": "order-A-1"}
    first = post(client, sender_url(environment), SEND, headers)
    second = post(client, sender_url(environment), SEND, headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["trackingId"] == second.json()["trackingId"]
    assert Notification.objects.count() == 1
    assert SendIdempotencyKey.objects.get().notification_id == uuid.UUID(first.json()["trackingId"])
    other = post(client, sender_url(environment), SEND, {**auth, "idempotency-key": "order-A-2"})
    assert other.json()["trackingId"] != first.json()["trackingId"]


def test_idempotency_key_reused_with_another_body_is_refused_and_sends_nothing(
    client, environment, auth, order_tracking
):
    headers = {**auth, "idempotency-key": "order-A-1"}
    first = post(client, sender_url(environment), SEND, headers)
    # The same body with its keys in another order is the same request.
    reordered = dict(reversed(list(SEND.items())))
    assert post(client, sender_url(environment), reordered, headers).json() == first.json()

    changed = {**SEND, "mergeTags": {**SEND.get("mergeTags", {}), "order_id": "B-2"}}
    refused = post(client, sender_url(environment), changed, headers)
    assert refused.status_code == 409
    message = refused.json()["message"]
    assert "order-A-1" in message and "different body" in message
    assert first.json()["trackingId"] in message
    assert Notification.objects.count() == 1


def test_scheduled_send_is_not_enqueued_and_waits_in_the_outbox(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    # Three days ahead: within the retention window (tests/security/test_schedule_window.py).
    when = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(
            client, sender_url(environment), {**SEND, "schedule": when.isoformat()}, auth
        )
    assert response.status_code == 200
    assert callbacks == []
    outbox = Outbox.objects.get()
    assert outbox.due_at == when and outbox.next_sweep_at == outbox.due_at
    assert not Delivery.objects.exists()
