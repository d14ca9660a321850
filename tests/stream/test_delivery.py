"""The stream end to end in one process: events recorded through logs.services.event_record,
outbox rows written with them, delivery run on commit (Celery eager: the same task calls a
worker makes) to a real HTTP receiver that verifies every signature with standardwebhooks."""

import json
import logging
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from logs.services import event_record
from stream.models import MessageState, StreamAttempt, StreamMessage, Subscription
from stream.services.delivery import message_deliver, message_sign, subscription_drain
from stream.services.subscriptions import subscription_create, subscription_enable
from stream.services.upkeep import message_replay, messages_sweep
from tests.factories import AccountFactory, EnvironmentFactory
from tests.logs.factories import NotificationFactory

pytestmark = [pytest.mark.django_db(transaction=True)]

FAST_RETRIES = {
    "STREAM_RETRY_BACKOFF_SECONDS": 0.01,
    "STREAM_RETRY_MAX_BACKOFF_SECONDS": 0.01,
    "STREAM_SWEEP_AFTER_SECONDS": 0.01,
}


def subscribe(receiver, environment, **options):
    subscription, secret = subscription_create(
        environment=environment, url=receiver.url, **({"kinds": ["sent", "delivered",
        "failed", "engagement", "received", "sending"]} | options)
    )  # fmt: skip
    receiver.secret = secret
    return subscription


def record(notification, kind, channel="email", sub_kind=""):
    return event_record(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        kind=kind,
        channel=channel,
        sub_kind=sub_kind,
        source="pipeline",
        dedupe_key=f"test:{kind}:{channel}:{sub_kind}",
    ).event


def test_each_event_arrives_signed_in_order_with_the_standard_body(celery_eager, receiver):
    environment = EnvironmentFactory()
    subscribe(receiver, environment)
    notification = NotificationFactory(environment=environment)

    events = [record(notification, kind) for kind in ("sending", "sent", "delivered")]

    assert receiver.rejected == 0
    bodies = receiver.bodies()
    assert [b["type"] for b in bodies] == [
        "notification.sending",
        "notification.sent",
        "notification.delivered",
    ]
    assert [b["data"]["eventId"] for b in bodies] == [event.id for event in events]
    last = bodies[-1]["data"]
    assert last["trackingId"] == str(notification.id)
    assert last["notificationType"] == notification.notification_type
    assert last["userId"] == notification.user_id
    assert (last["channel"], last["deliveryState"]) == ("email", "delivered")
    headers = receiver.requests[0]
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-signature"].startswith("v1,")
    assert StreamMessage.objects.filter(state=MessageState.DELIVERED).count() == 3
    attempt = StreamAttempt.objects.first()
    assert (attempt.status_code, attempt.error) == (204, "")


def test_the_signature_covers_the_body(receiver):
    """A subscriber's verify refuses a body changed in transit (the signature is real)."""
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"type":"notification.sent"}'
    headers = message_sign(secret=secret, webhook_id="msg_1", sent_at=timezone.now(), body=body)
    assert Webhook(secret).verify(body, headers) == {"type": "notification.sent"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"type":"notification.failed"}', headers)


def test_kinds_and_sub_kinds_choose_what_is_sent(celery_eager, receiver):
    environment = EnvironmentFactory()
    subscribe(receiver, environment, kinds=["failed", "delivered"], sub_kinds=["bounce"])
    other = EnvironmentFactory()  # its events are not this subscriber's
    record(NotificationFactory(environment=other), "failed", sub_kind="bounce")
    email, sms, call = (NotificationFactory(environment=environment) for _ in range(3))

    record(email, "sent")
    record(email, "failed", sub_kind="bounce")
    record(sms, "failed", channel="sms", sub_kind="undelivered")
    record(call, "delivered", channel="call", sub_kind="busy")

    assert [b["type"] for b in receiver.bodies()] == [
        "notification.failed.bounce",
        "notification.delivered.busy",
    ]


def test_compatibility_mode_sends_the_reference_body(celery_eager, receiver):
    environment = EnvironmentFactory()
    subscribe(
        receiver, environment, kinds=["failed", "engagement"], payload_format="notificationapi"
    )
    email, sms = (
        NotificationFactory(environment=environment),
        NotificationFactory(environment=environment),
    )

    record(email, "delivered")
    record(email, "engagement", sub_kind="opened")
    record(email, "engagement", sub_kind="clicked")
    record(email, "engagement", sub_kind="complained")  # the reference has no type for it
    record(sms, "failed", channel="sms", sub_kind="undelivered")

    assert receiver.bodies() == [
        {"eventType": event_type, "trackingId": str(n.id), "notificationId": "order_tracking",
         "channel": channel, "userId": n.user_id}
        for event_type, n, channel in (
            ("OPEN", email, "EMAIL"), ("CLICK", email, "EMAIL"), ("SMS_FAILED", sms, "SMS")
        )
    ]  # fmt: skip


@override_settings(**FAST_RETRIES)
def test_with_the_receiver_down_every_event_arrives_once_back_in_order(celery_eager, receiver):
    environment = EnvironmentFactory()
    subscribe(receiver, environment)
    notifications = [NotificationFactory(environment=environment) for _ in range(4)]
    receiver.up = False

    recorded = {n.id: [] for n in notifications}
    # The clock stands still while recording: a failed first event's retry (10 ms of backoff)
    # is not due yet when the next events' drains run, so each is tried once here.
    with time_machine.travel(timezone.now(), tick=False):
        for kind in ("sending", "sent", "delivered"):
            for notification in notifications:  # interleaved, as traffic is
                recorded[notification.id].append(record(notification, kind).id)

    # Recording went on; only each notification's first event was tried, the rest wait.
    assert StreamMessage.objects.count() == 12
    tried = StreamMessage.objects.filter(attempt_count__gt=0)
    assert sorted(tried.values_list("event_id", flat=True)) == sorted(
        ids[0] for ids in recorded.values()
    )
    assert set(StreamAttempt.objects.values_list("status_code", flat=True)) == {503}
    with time_machine.travel(timezone.now(), tick=True) as clock:
        for _ in range(3):  # still down: each sweep retries every first event, in vain
            clock.shift(timedelta(seconds=1))  # past the backoff: every retry is due
            messages_sweep()
        # Every try reached the receiver and is recorded with its failure; the first events
        # were tried 4 times each, the others never (nothing overtakes); none is delivered.
        heads = sorted(ids[0] for ids in recorded.values())
        assert sorted(tried.values_list("event_id", flat=True)) == heads
        assert set(tried.values_list("attempt_count", flat=True)) == {4}
        assert StreamAttempt.objects.count() == len(receiver.requests) == 16
        assert set(StreamAttempt.objects.values_list("status_code", "error")) == {(503, "HTTP 503")}
        assert set(StreamMessage.objects.values_list("state", flat=True)) == {MessageState.PENDING}

        receiver.up = True
        for _ in range(20):
            if not StreamMessage.objects.filter(state=MessageState.PENDING).exists():
                break
            clock.shift(timedelta(seconds=1))
            messages_sweep()

    arrived = {n.id: [] for n in notifications}
    for body in receiver.bodies():
        arrived[uuid.UUID(body["data"]["trackingId"])].append(body["data"]["eventId"])
    assert arrived == recorded
    assert receiver.rejected == 0


@override_settings(STREAM_DRAIN_BATCH=10, STREAM_DRAIN_CONCURRENCY=5)
def test_a_backlog_goes_out_many_notifications_at_once_each_in_order(receiver):
    """A busy environment's backlog: one drain posts several notifications' events at once
    (10 a round on 5 threads here), never two events of one notification at once, and each
    notification's events arrive in the order they were recorded."""
    environment = EnvironmentFactory()
    subscription = subscribe(receiver, environment)
    notifications = [NotificationFactory(environment=environment) for _ in range(12)]
    recorded = {n.id: [] for n in notifications}
    for kind in ("sending", "sent", "delivered"):
        for notification in notifications:
            recorded[notification.id].append(record(notification, kind).id)
    receiver.delay = 0.2  # each answer takes a while, as over the internet

    assert subscription_drain(subscription_id=subscription.pk) == 36

    assert receiver.most_in_flight > 1
    arrived = {n.id: [] for n in notifications}
    for body in receiver.bodies():
        arrived[uuid.UUID(body["data"]["trackingId"])].append(body["data"]["eventId"])
    assert arrived == recorded
    assert set(StreamMessage.objects.values_list("state", "attempt_count")) == {
        (MessageState.DELIVERED, 1)
    }
    assert receiver.rejected == 0


@override_settings(**FAST_RETRIES, STREAM_TIMEOUT_SECONDS=0.3)
def test_a_subscriber_that_times_out_never_holds_up_recording_and_is_retried(
    celery_eager, receiver
):
    environment = EnvironmentFactory()
    subscribe(receiver, environment)
    notification = NotificationFactory(environment=environment)
    receiver.delay = 1.0  # answers long after STREAM_TIMEOUT_SECONDS

    with transaction.atomic():
        event = record(notification, "sending")
        # The event is recorded without a POST: the outbox row waits for the commit.
        assert receiver.requests == []
    message = StreamMessage.objects.get(event_id=event.id)
    assert message.state == MessageState.PENDING
    [timed_out] = StreamAttempt.objects.filter(message=message)
    assert timed_out.status_code is None and timed_out.error == "timed out"

    receiver.delay = 0.0
    for _ in range(20):
        if not StreamMessage.objects.filter(state=MessageState.PENDING).exists():
            break
        messages_sweep()
    message.refresh_from_db()
    assert message.state == MessageState.DELIVERED
    assert receiver.received[-1]["id"] == message.webhook_id
    assert StreamAttempt.objects.filter(message=message).earliest("attempted_at") == timed_out


@override_settings(STREAM_RETRY_BACKOFF_SECONDS=10, STREAM_RETRY_MAX_BACKOFF_SECONDS=50)
def test_failed_deliveries_back_off_exponentially_up_to_the_maximum(celery_eager, receiver):
    environment = EnvironmentFactory()
    subscribe(receiver, environment)
    receiver.up = False
    record(NotificationFactory(environment=environment), "sending")  # attempt 1, on commit
    message = StreamMessage.objects.get()

    waits = []
    for _ in range(4):
        message.refresh_from_db()
        last = StreamAttempt.objects.filter(message=message).latest("attempted_at")
        waits.append((message.next_attempt_at - last.attempted_at).total_seconds())
        StreamMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
        assert message_deliver(message_id=message.pk) == "retry"

    assert waits == [10, 20, 40, 50]  # doubled after each attempt, then the maximum
    assert message.retry_until - message.created_at == timedelta(days=1)


@override_settings(**FAST_RETRIES, STREAM_RETRY_WINDOW_SECONDS=60)
def test_a_subscriber_failing_for_the_window_is_disabled_with_a_notice(
    celery_eager, receiver, caplog
):
    environment = EnvironmentFactory()
    subscription = subscribe(receiver, environment)
    receiver.up = False
    notification = NotificationFactory(environment=environment)
    record(notification, "sending")
    subscription.refresh_from_db()
    assert subscription.failing_since is not None and subscription.enabled

    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=True):
        with caplog.at_level(logging.WARNING, logger="stream.services.delivery"):
            messages_sweep()
        subscription.refresh_from_db()
        assert not subscription.enabled
        assert "every delivery failed for 60 s" in subscription.disabled_reason
        [notice] = [r.getMessage() for r in caplog.records if r.name == "stream.services.delivery"]
        assert "disabled" in notice and receiver.url not in notice
        assert StreamMessage.objects.get().state == MessageState.GIVEN_UP
        record(notification, "sent")  # a disabled subscriber gets no new messages
        assert StreamMessage.objects.count() == 1

        receiver.up = True
        StreamMessage.objects.update(state=MessageState.PENDING)  # as if still waiting
        subscription_enable(subscription=subscription)
    assert [b["type"] for b in receiver.bodies()] == ["notification.sending"]
    assert Subscription.objects.get().failing_since is None


def test_replay_sends_a_message_again_with_the_same_webhook_id(celery_eager, receiver):
    environment = EnvironmentFactory()
    subscribe(receiver, environment)
    record(NotificationFactory(environment=environment), "sending")
    message = StreamMessage.objects.get()

    assert message_replay(message_ids=[message.pk]) == 1

    assert [item["id"] for item in receiver.received] == [message.webhook_id] * 2
    assert StreamAttempt.objects.filter(message=message).count() == 2
    assert json.dumps(receiver.received[0]["body"]) == json.dumps(receiver.received[1]["body"])


def test_finished_messages_go_with_the_logs_and_pending_ones_stay(receiver):
    from stream.services.upkeep import messages_purge

    environment = EnvironmentFactory()
    subscription = subscribe(receiver, environment)
    old = timezone.now() - timedelta(days=8)
    for state in ("delivered", "given_up", "pending"):
        StreamMessage.objects.create(
            subscription=subscription, environment=environment, notification_id=uuid.uuid4(),
            event_id=1, event_type="notification.sent", webhook_id=f"msg_{state}", body={},
            created_at=old, retry_until=old, state=state,
        )  # fmt: skip

    assert messages_purge(older_than_days=7, batch_size=1) == 2
    assert list(StreamMessage.objects.values_list("state", flat=True)) == ["pending"]


def test_an_accounts_shorter_retention_purges_its_finished_messages_sooner(receiver):
    from stream.services.upkeep import messages_purge

    short = EnvironmentFactory(account=AccountFactory(retention_days=2))
    other = EnvironmentFactory()
    three_days_ago = timezone.now() - timedelta(days=3)
    for environment in (short, other):
        subscription = subscribe(receiver, environment)
        for state in ("delivered", "pending"):
            StreamMessage.objects.create(
                subscription=subscription, environment=environment,
                notification_id=uuid.uuid4(), event_id=1, event_type="notification.sent",
                webhook_id=f"msg_{environment.pk}_{state}", body={}, created_at=three_days_ago,
                retry_until=three_days_ago, state=state,
            )  # fmt: skip

    assert messages_purge(older_than_days=7) == 1
    assert sorted(StreamMessage.objects.values_list("environment", "state")) == sorted(
        [(short.pk, "pending"), (other.pk, "delivered"), (other.pk, "pending")]
    )
