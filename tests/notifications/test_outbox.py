"""The durable hand-off: the outbox sweeper enqueues what no worker took, what a dead worker
left (lease expired) and scheduled sends once due; schedule PATCH/DELETE move or cancel."""

import json
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from logs.models import Notification
from logs.vocabulary import Channel
from notifications.models import Outbox, SandboxMessage
from notifications.outbox import outbox_sweep
from tests.notifications.helpers import labels, refreshed, timeline

pytestmark = pytest.mark.django_db

BODY = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "alice@example.com"},
    "mergeTags": {"first_name": "Alice", "order_id": "A-1"},
    "forceChannels": ["EMAIL"],
}


@pytest.fixture(autouse=True)
def sandbox(settings):
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    settings.OUTBOX_SWEEP_AFTER_SECONDS = 5
    settings.OUTBOX_LEASE_SECONDS = 60


def accept(client, environment, auth, body=BODY, capture=None) -> Notification:
    """Send, dropping the on-commit enqueue: as if the broker never got the message."""
    with capture(execute=False):
        response = client.post(
            f"/{environment.client_id}/sender",
            data=json.dumps(body),
            content_type="application/json",
            headers=auth,
        )
    assert response.status_code == 200, response.content
    return Notification.objects.get(id=response.json()["trackingId"])


def accept_scheduled(client, environment, auth, capture) -> tuple[Notification, object]:
    """A send scheduled an hour ahead, and its time."""
    when = timezone.now() + timedelta(hours=1)
    body = {**BODY, "schedule": when.isoformat()}
    return accept(client, environment, auth, body, capture), when


def sweep(capture, at):
    with time_machine.travel(at, tick=False), capture(execute=True):
        return outbox_sweep()


def test_a_send_the_broker_never_got_is_swept_after_the_grace_period(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    notification = accept(client, environment, auth, capture=django_capture_on_commit_callbacks)
    now = timezone.now()
    assert sweep(django_capture_on_commit_callbacks, now + timedelta(seconds=1)) == []
    assert sweep(django_capture_on_commit_callbacks, now + timedelta(seconds=6)) == [
        notification.id
    ]
    assert labels(notification, Channel.EMAIL) == ["Sending", "Sent"]
    assert not Outbox.objects.exists()


def test_a_dispatch_whose_worker_died_is_swept_when_its_lease_ends(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    notification = accept(client, environment, auth, capture=django_capture_on_commit_callbacks)
    now = timezone.now()
    # A worker claimed it (lease of 60 s) and died before finishing.
    Outbox.objects.update(next_sweep_at=now + timedelta(seconds=60))
    assert sweep(django_capture_on_commit_callbacks, now + timedelta(seconds=30)) == []
    assert sweep(django_capture_on_commit_callbacks, now + timedelta(seconds=61)) == [
        notification.id
    ]
    assert refreshed(notification).status == "received"  # Sent; the sandbox reports later
    assert labels(notification, Channel.EMAIL) == ["Sending", "Sent"]


def test_repeated_sweeps_of_a_waiting_row_back_off(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    accept(client, environment, auth, capture=django_capture_on_commit_callbacks)
    Outbox.objects.update(next_sweep_at=timezone.now())
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=False):
        assert len(outbox_sweep(now=start)) == 1
        assert outbox_sweep(now=start + timedelta(seconds=4)) == []
        assert len(outbox_sweep(now=start + timedelta(seconds=5))) == 1
        # Second re-enqueue waits twice as long.
        assert outbox_sweep(now=start + timedelta(seconds=14)) == []
        assert len(outbox_sweep(now=start + timedelta(seconds=15))) == 1


def test_a_scheduled_send_goes_out_when_due_not_before(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    when = timezone.now() + timedelta(hours=1)
    body = {**BODY, "schedule": when.isoformat()}
    notification = accept(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert refreshed(notification).scheduled_for == when
    assert sweep(django_capture_on_commit_callbacks, when - timedelta(minutes=1)) == []
    assert labels(notification, Channel.EMAIL) == []
    assert sweep(django_capture_on_commit_callbacks, when + timedelta(seconds=1)) == [
        notification.id
    ]
    assert labels(notification, Channel.EMAIL) == ["Sending", "Sent"]


def test_schedule_patch_moves_the_send_and_changes_merge_tags(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    notification, when = accept_scheduled(
        client, environment, auth, django_capture_on_commit_callbacks
    )
    later = when + timedelta(hours=1)
    response = client.patch(
        f"/{environment.client_id}/schedule/{notification.id}",
        data=json.dumps(
            {"schedule": later.isoformat(), "mergeTags": {"first_name": "Bo", "order_id": "Z"}}
        ),
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 200, response.content
    assert sweep(django_capture_on_commit_callbacks, when + timedelta(seconds=1)) == []
    sweep(django_capture_on_commit_callbacks, later + timedelta(seconds=1))
    message = SandboxMessage.objects.get(notification_id=notification.id)
    assert message.subject == "Order Z shipped"


def test_schedule_delete_cancels_and_nothing_is_sent(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    notification, when = accept_scheduled(
        client, environment, auth, django_capture_on_commit_callbacks
    )
    url = f"/{environment.client_id}/schedule/{notification.id}"
    assert client.delete(url, headers=auth).status_code == 200
    assert sweep(django_capture_on_commit_callbacks, when + timedelta(seconds=1)) == []
    assert not SandboxMessage.objects.exists()
    assert [label for label, channel, _ in timeline(notification)] == ["Received", "Ignored"]
    assert refreshed(notification).status == "success"  # the request's outcome: ignored
    # Already cancelled: 409 saying so; unknown or malformed ids: 404.
    assert client.delete(url, headers=auth).status_code == 409
    unknown = f"/{environment.client_id}/schedule/00000000-0000-0000-0000-000000000000"
    assert client.delete(unknown, headers=auth).status_code == 404
    assert client.delete(f"/{environment.client_id}/schedule/nope", headers=auth).status_code == 404


def test_schedule_patch_refuses_bad_input(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    notification, _ = accept_scheduled(
        client, environment, auth, django_capture_on_commit_callbacks
    )
    url = f"/{environment.client_id}/schedule/{notification.id}"
    for body, message in (({}, "Send schedule"), ({"schedule": "soon"}, "not an ISO-8601")):
        response = client.patch(
            url, data=json.dumps(body), content_type="application/json", headers=auth
        )
        assert response.status_code == 400 and message in response.json()["message"]


def test_nightly_purge_keeps_what_points_at_logs_still_kept(environment):
    from datetime import UTC, datetime

    from notifications.models import InAppNotification, SendIdempotencyKey
    from notifications.services.upkeep import send_tables_purge

    now = datetime(2026, 11, 27, 3, 45, tzinfo=UTC)
    old, recent = now - timedelta(days=8), now - timedelta(days=6)
    for when, key in ((old, "old"), (recent, "recent")):
        SendIdempotencyKey.objects.create(
            environment=environment, key=key, created_at=when, notification_id=uuid.uuid4()
        )
        InAppNotification.objects.create(
            environment=environment,
            user_id="u",
            title=key,
            notification_id=uuid.uuid4(),
            created_at=when,
            notification_created_at=when,
        )
    purged = send_tables_purge(retention_days=7, now=now)
    assert purged == {"sendidempotencykey": 1, "inappnotification": 1, "sandboxmessage": 0}
    assert list(SendIdempotencyKey.objects.values_list("key", flat=True)) == ["recent"]
    assert list(InAppNotification.objects.values_list("title", flat=True)) == ["recent"]
