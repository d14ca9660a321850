"""User preferences, identify, the in-app feed, retract and sub-notifications over HTTP,
with the credentials NotificationAPI's reference asks for (client secret or user hash)."""

import json
from urllib.parse import quote

import pytest

from logs.vocabulary import Channel
from notifications.models import EndUser, InAppNotification, SubNotification, UserPreference
from tests.notifications.conftest import SECRET, basic, user_hash
from tests.notifications.factories import UserPreferenceFactory
from tests.notifications.helpers import delivery, labels, refreshed, send

pytestmark = pytest.mark.django_db


IN_APP_SEND = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1"},
    "mergeTags": {"order_id": "A-1"},
    "forceChannels": ["INAPP_WEB"],
}


def as_user(environment, user_id: str) -> dict:
    return {"authorization": basic(environment.client_id, user_id, user_hash(SECRET, user_id))}


def call(client, method, url, body, headers):
    data = json.dumps(body) if body is not None else None
    return getattr(client, method)(url, data=data, content_type="application/json", headers=headers)


def test_set_preferences_accepts_delivery_and_legacy_state(client, environment, auth):
    body = [
        {"notificationId": "order_tracking", "channel": "EMAIL", "delivery": "off"},
        {"notificationId": "order_tracking", "channel": "SMS", "state": False},
        {"notificationId": "digest"},
        {"notificationId": "order_tracking", "subNotificationId": "p1", "delivery": "weekly"},
    ]
    response = call(client, "post", f"/{environment.client_id}/user_preferences/usr_1", body, auth)
    assert response.status_code == 200, response.content
    stored = set(
        UserPreference.objects.values_list(
            "notification_type", "channel", "sub_notification_id", "delivery"
        )
    )
    assert stored == {
        ("order_tracking", "email", "", "off"),
        ("order_tracking", "sms", "", "off"),
        ("digest", "", "", "instant"),
        ("order_tracking", "", "p1", "weekly"),
    }
    # Setting again overrides, never duplicates.
    call(
        client,
        "post",
        f"/{environment.client_id}/user_preferences/usr_1",
        [{"notificationId": "order_tracking", "channel": "EMAIL", "delivery": "daily"}],
        auth,
    )
    assert UserPreference.objects.get(channel="email").delivery == "daily"
    assert UserPreference.objects.count() == 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"notificationId": "x"}, "must be a JSON array"),
        ([{"channel": "EMAIL"}], "[0].notificationId is required"),
        ([{"notificationId": "x", "channel": "FAX"}], "[0].channel: unknown channel 'FAX'"),
        ([{"notificationId": "x", "delivery": "sometimes"}], "[0].delivery 'sometimes'"),
        ([{"notificationId": "x", "state": "yes"}], "[0].state must be true or false"),
    ],
)
def test_bad_preferences_answer_400_and_write_nothing(client, environment, auth, body, message):
    url = f"/{environment.client_id}/user_preferences/usr_1"
    response = call(client, "post", url, body, auth)
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert not UserPreference.objects.exists()


def test_user_hash_may_not_set_preferences_server_side_only(client, environment):
    url = f"/{environment.client_id}/user_preferences/usr_1"
    response = call(client, "post", url, [{"notificationId": "x"}], as_user(environment, "usr_1"))
    assert response.status_code == 401


def test_delete_preferences_with_the_user_hash(client, environment):
    UserPreferenceFactory(environment=environment, user_id="usr_1", notification_type="a")
    UserPreferenceFactory(
        environment=environment,
        user_id="usr_1",
        notification_type="a",
        sub_notification_id="s1",
        channel="email",
    )
    UserPreferenceFactory(environment=environment, user_id="usr_1", notification_type="b")
    base = f"/{environment.client_id}/users/usr_1/preferences"
    headers = as_user(environment, "usr_1")
    assert client.delete(
        f"{base}?notificationId=a&subNotificationId=s1", headers=headers
    ).json() == {"deleted": 1}
    assert client.delete(f"{base}?notificationId=a", headers=headers).json() == {"deleted": 1}
    assert list(UserPreference.objects.values_list("notification_type", flat=True)) == ["b"]
    missing = client.delete(base, headers=headers)
    assert missing.status_code == 400 and "notificationId is required" in missing.json()["message"]


def test_another_users_hash_answers_403(client, environment):
    UserPreferenceFactory(environment=environment, user_id="usr_1", notification_type="a")
    url = f"/{environment.client_id}/users/usr_1/preferences?notificationId=a"
    response = client.delete(url, headers=as_user(environment, "usr_2"))
    assert response.status_code == 403
    assert UserPreference.objects.exists()


def test_identify_stores_the_user_and_later_fields_merge(client, environment):
    user_id = "team/alice"  # the Python SDK leaves '/' unencoded
    url = f"/{environment.client_id}/users/{quote(user_id)}"
    headers = as_user(environment, user_id)
    body = {
        "email": "alice@example.com",
        "number": "415 555 0100",
        "timezone": "Europe/Paris",
        "pushTokens": [{"type": "FCM", "token": "t", "device": {"device_id": "d"}}],
    }
    response = call(client, "post", url, body, headers)
    assert response.status_code == 200, response.content
    call(client, "post", url, {"email": "new@example.com"}, headers)
    user = EndUser.objects.get(user_id=user_id)
    assert (user.email, user.number, user.timezone) == (
        "new@example.com",
        "+14155550100",
        "Europe/Paris",
    )
    assert user.push_tokens[0]["token"] == "t"
    bad = call(client, "post", url, {"number": "12"}, headers)
    assert bad.status_code == 400 and "user.number" in bad.json()["message"]


def test_an_in_app_notification_is_delivered_in_the_feed_and_opened_and_clicked_are_engagement(
    client, environment, auth, order_tracking, settings, django_capture_on_commit_callbacks
):
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    body = IN_APP_SEND
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    # In the user's feed once stored: Delivered, and the notification reached success
    # without the user's app having fetched anything.
    assert labels(notification, Channel.IN_APP) == ["Sending", "Sent", "Delivered"]
    assert refreshed(notification).status == "success"
    assert delivery(notification, Channel.IN_APP).state == "delivered"
    feed_url = f"/{environment.client_id}/users/usr_1/notifications/INAPP_WEB"
    headers = as_user(environment, "usr_1")
    feed = client.get(feed_url, headers=headers).json()["notifications"]
    assert [(item["trackingId"], item["title"]) for item in feed] == [
        (str(notification.id), "Order A-1 shipped")
    ]
    client.get(feed_url, headers=headers)  # fetching records nothing new
    assert labels(notification, Channel.IN_APP) == ["Sending", "Sent", "Delivered"]
    update = {
        "trackingIds": [str(notification.id)],
        "opened": "2026-11-27T10:00:00Z",
        "clicked": "2026-11-27T10:00:05Z",
    }
    assert call(client, "patch", feed_url, update, headers).json() == {"updated": 1}
    call(client, "patch", feed_url, update, headers)  # twice: recorded once
    assert labels(notification, Channel.IN_APP) == [
        "Sending",
        "Sent",
        "Delivered",
        "Engagement - Opened",
        "Engagement - Clicked",
    ]
    assert refreshed(notification).status == "success"  # engagement changes no status
    assert client.get(feed_url, headers=as_user(environment, "usr_2")).status_code == 403
    bad = call(client, "patch", feed_url, {"opened": "now"}, headers)
    assert bad.status_code == 400 and "trackingIds is required" in bad.json()["message"]


def test_retract_removes_the_users_in_app_notifications_of_that_type(
    client, environment, auth, order_tracking, settings, django_capture_on_commit_callbacks
):
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    body = IN_APP_SEND
    send(client, environment, auth, body, django_capture_on_commit_callbacks)
    send(
        client,
        environment,
        auth,
        {**body, "user": {"id": "usr_2"}},
        django_capture_on_commit_callbacks,
    )
    url = f"/{environment.client_id}/sender/retract"
    response = call(
        client, "post", url, {"notificationId": "order_tracking", "userId": "usr_1"}, auth
    )
    assert response.json() == {"retracted": 1}
    assert list(InAppNotification.objects.values_list("user_id", flat=True)) == ["usr_2"]
    bad = call(client, "post", url, {"notificationId": "order_tracking"}, auth)
    assert bad.status_code == 400 and "userId is required" in bad.json()["message"]


def test_sub_notifications_put_and_delete(client, environment, auth, order_tracking):
    url = f"/{environment.client_id}/notifications/order_tracking/subNotifications/proj-1"
    assert call(client, "put", url, {"title": "Apollo"}, auth).status_code == 200
    assert call(client, "put", url, {"title": "Apollo 2"}, auth).status_code == 200
    assert SubNotification.objects.get().title == "Apollo 2"
    assert client.delete(url, headers=auth).status_code == 200
    assert not SubNotification.objects.exists()
    assert client.delete(url, headers=auth).status_code == 404
    unknown = f"/{environment.client_id}/notifications/nope/subNotifications/x"
    assert call(client, "put", unknown, {"title": "x"}, auth).status_code == 404
    assert call(client, "put", url, {"title": 5}, auth).status_code == 400
