"""Issue 16, item 5: scheduled sends silently lost. A notification's rows live in the day it
was made and go when that day passes the retention; a send scheduled later was accepted, then
its day was purged and dispatch dropped it without a Failed event. A schedule later than the
environment's retention less one day is refused with a 400 that says the limit, at send and
when a schedule is moved (PATCH /schedule/{trackingId})."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Account
from logs.models import Notification
from notifications.models import Outbox
from tests.notifications import conftest as send_fixtures

pytestmark = pytest.mark.django_db

environment = send_fixtures.environment
auth = send_fixtures.auth
order_tracking = send_fixtures.order_tracking

BODY = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "alice@example.com"},
    "mergeTags": {"first_name": "Alice", "order_id": "A-1"},
}


def post(client, environment, auth, when):
    return client.post(
        f"/{environment.client_id}/sender",
        data=json.dumps({**BODY, "schedule": when.isoformat()}),
        content_type="application/json",
        headers=auth,
    )


def test_a_schedule_past_the_install_retention_is_refused_saying_the_limit(
    client, environment, auth, order_tracking, settings
):
    settings.LOG_RETENTION_DAYS = 7
    now = timezone.now()
    response = post(client, environment, auth, now + timedelta(days=30))
    assert response.status_code == 400, response.content
    message = response.json()["message"]
    assert message.startswith("schedule ") and "too far ahead" in message
    assert "keeps its logs 7 days" in message and "at most 6 days" in message
    assert not Notification.objects.exists() and not Outbox.objects.exists()
    # Just past the limit is refused too; inside it is accepted.
    assert post(client, environment, auth, now + timedelta(days=6, hours=1)).status_code == 400
    assert post(client, environment, auth, now + timedelta(days=5, hours=23)).status_code == 200


def test_an_account_with_shorter_retention_has_a_shorter_window(
    client, environment, auth, order_tracking, settings
):
    settings.LOG_RETENTION_DAYS = 7
    Account.objects.filter(pk=environment.account_id).update(retention_days=3)
    environment.account.refresh_from_db()
    response = post(client, environment, auth, timezone.now() + timedelta(days=4))
    assert response.status_code == 400, response.content
    assert "keeps its logs 3 days" in response.json()["message"]
    assert "at most 2 days" in response.json()["message"]
    ok = post(client, environment, auth, timezone.now() + timedelta(days=1))
    assert ok.status_code == 200, ok.content


def test_moving_a_schedule_past_the_window_is_refused_and_the_send_keeps_its_time(
    client, environment, auth, order_tracking, settings
):
    settings.LOG_RETENTION_DAYS = 7
    when = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    tracking_id = post(client, environment, auth, when).json()["trackingId"]
    response = client.patch(
        f"/{environment.client_id}/schedule/{tracking_id}",
        data=json.dumps({"schedule": (timezone.now() + timedelta(days=60)).isoformat()}),
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 400, response.content
    assert "at most 6 days" in response.json()["message"]
    assert Outbox.objects.get(notification_id=tracking_id).due_at == when
    moved = client.patch(
        f"/{environment.client_id}/schedule/{tracking_id}",
        data=json.dumps({"schedule": (when + timedelta(days=2)).isoformat()}),
        content_type="application/json",
        headers=auth,
    )
    assert moved.status_code == 200, moved.content
    assert Outbox.objects.get(notification_id=tracking_id).due_at == when + timedelta(days=2)
