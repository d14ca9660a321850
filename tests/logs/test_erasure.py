"""Erasing one end user's data (DELETE /api/v1/users/{userId}/data, logs/erasure.py): every
row that names the user goes, over every day partition, while writers keep recording other
users; other users, other environments and the hourly counts are untouched; the audit says
who asked and how many rows went."""

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import caches
from django.db import connection, connections
from django.utils import timezone

from accounts.crypto import secret_encrypt
from accounts.models import Membership
from audit.models import AccessRecord
from insights.models import HourlyRollup
from logs.erasure import erasure_request, erasure_run, erasures_resume
from logs.models import Delivery, ErasureJob, Event, Notification
from logs.partitions import partitions_ensure
from logs.services import notification_create
from notifications.models import (
    EndUser,
    InAppNotification,
    Outbox,
    SandboxMessage,
    SendIdempotencyKey,
    UserPreference,
)
from stream.models import StreamMessage, Subscription
from stream.services.subscriptions import subscription_secret_generate
from tests.console.conftest import console_user
from tests.factories import ApiKeyFactory, EnvironmentFactory
from tests.logs.api.conftest import SECRET, bearer_client, client_for
from tests.logs.factories import DeliveryFactory, EventFactory
from tests.notifications.factories import ChannelTemplateFactory, NotificationTypeFactory
from tests.stream.conftest import celery_eager
from webhooks.models import InboxEntry

assert celery_eager  # a fixture, imported for these tests

pytestmark = pytest.mark.django_db(transaction=True)

ERASED = "usr_erased"
KEPT = "usr_kept"
DAYS = 4
PER_DAY = 3


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.LOGS_API_THROTTLE_RATE = "100000/minute"
    caches["default"].clear()
    today = datetime.now(UTC).date()
    partitions_ensure(days_ahead=1, start=today - timedelta(days=DAYS))


@pytest.fixture
def environment():
    return EnvironmentFactory(client_secret=SECRET)


@pytest.fixture
def subscription(environment):
    return Subscription.objects.create(
        environment=environment,
        url="https://hooks.example.com/events",
        kinds=["received"],
        secret_encrypted=secret_encrypt(subscription_secret_generate()),
        # Nothing is posted anywhere: the messages are what the test reads.
        enabled=False,
    )


def seed(environment, user_id: str, subscription) -> list[uuid.UUID]:
    """The user's notifications over DAYS days, each with a delivery, events, an in-app item,
    a sandbox message, a stream message, an idempotency key, an outbox row and a provider
    callback; plus the user's preference and end-user record."""
    ids = []
    now = timezone.now()
    for day in range(DAYS):
        for n in range(PER_DAY):
            created = now - timedelta(days=day, minutes=n + 1)
            key = f"{user_id}-{day}-{n}"
            notification = notification_create(
                environment_id=environment.id,
                notification_type="order_tracking",
                user_id=user_id,
                email=f"{user_id}@example.com",
                request={"notificationId": "order_tracking", "user": {"id": user_id}},
                created_at=created,
                idempotency_key=key,
            )
            ids.append(notification.id)
            delivery = DeliveryFactory(notification=notification, environment=environment)
            EventFactory(notification=notification, environment=environment, delivery=delivery)
            InAppNotification.objects.create(
                environment=environment,
                user_id=user_id,
                notification_id=notification.id,
                notification_created_at=created,
                notification_type="order_tracking",
                title="Your order shipped",
            )
            SandboxMessage.objects.create(
                environment=environment,
                channel="email",
                provider_message_id=delivery.provider_message_id,
                notification_id=notification.id,
                destination=f"{user_id}@example.com",
            )
            StreamMessage.objects.create(
                subscription=subscription,
                environment=environment,
                notification_id=notification.id,
                event_id=1,
                event_type="received",
                webhook_id=f"msg_{uuid.uuid4().hex}",
                body={"userId": user_id, "trackingId": str(notification.id)},
                retry_until=now + timedelta(days=1),
            )
            SendIdempotencyKey.objects.create(
                environment=environment, key=key, notification_id=notification.id
            )
            Outbox.objects.create(
                notification_id=notification.id,
                notification_created_at=created,
                environment=environment,
                due_at=now,
                next_sweep_at=now + timedelta(days=1),
            )
            InboxEntry.objects.create(
                provider="postmark",
                path="/webhooks/postmark",
                body=json.dumps({"Recipient": f"{user_id}@example.com"}).encode(),
                environment=environment,
                message_ids=[delivery.provider_message_id],
            )
    UserPreference.objects.create(
        environment=environment, user_id=user_id, notification_type="order_tracking"
    )
    EndUser.objects.create(environment=environment, user_id=user_id, email=f"{user_id}@x.com")
    return ids


def rows_of(environment, user_id: str, ids) -> dict[str, int]:
    """Rows naming `user_id` (or its notifications) in every table that holds one."""
    env = {"environment": environment}
    by_tracking = {**env, "notification_id__in": ids}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM webhooks_inbox "
            "WHERE environment_id = %s AND convert_from(body, 'UTF8') LIKE %s",
            [environment.id, f"%{user_id}@%"],
        )
        [inbox] = cursor.fetchone()
    return {
        "logs_notification": Notification.objects.filter(**env, user_id=user_id).count(),
        "logs_delivery": Delivery.objects.filter(**by_tracking).count(),
        "logs_event": Event.objects.filter(**by_tracking).count(),
        "in_app": InAppNotification.objects.filter(**env, user_id=user_id).count(),
        "preferences": UserPreference.objects.filter(**env, user_id=user_id).count(),
        "end_users": EndUser.objects.filter(**env, user_id=user_id).count(),
        "idempotency": SendIdempotencyKey.objects.filter(**by_tracking).count(),
        "sandbox": SandboxMessage.objects.filter(**by_tracking).count(),
        "stream": StreamMessage.objects.filter(**env, body__userId=user_id).count(),
        "outbox": Outbox.objects.filter(**by_tracking).count(),
        "inbox": inbox,
    }


def days_of(ids) -> int:
    return len(
        {
            d.date()
            for d in Notification.objects.filter(id__in=ids).values_list("created_at", flat=True)
        }
    )


class Writers:
    """Threads that keep recording notifications, deliveries and events for other users of
    the environment while the erasure runs, each on its own connection."""

    def __init__(self, environment, count: int = 2):
        self.environment = environment
        self.stop = threading.Event()
        self.written: list[uuid.UUID] = []
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(count)
        ]

    def _run(self, n: int) -> None:
        try:
            i = 0
            while not self.stop.is_set():
                created = timezone.now() - timedelta(days=i % DAYS, seconds=n)
                notification = notification_create(
                    environment_id=self.environment.id,
                    notification_type="order_tracking",
                    user_id=f"usr_writer_{n}",
                    email=f"writer{n}@example.com",
                    created_at=created,
                )
                DeliveryFactory(notification=notification, environment=self.environment)
                self.written.append(notification.id)
                i += 1
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connections.close_all()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(self.written) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        assert not self.errors, self.errors


def test_erasure_over_several_days_with_writers_leaves_nothing_of_the_user(
    environment, subscription
):
    erased_ids = seed(environment, ERASED, subscription)
    kept_ids = seed(environment, KEPT, subscription)
    other_environment = EnvironmentFactory()
    other_subscription = Subscription.objects.create(
        environment=other_environment,
        url="https://hooks.example.com/other",
        kinds=["received"],
        secret_encrypted=secret_encrypt(subscription_secret_generate()),
        enabled=False,
    )
    same_user_elsewhere = seed(other_environment, ERASED, other_subscription)
    rollup = HourlyRollup.objects.create(
        environment=environment,
        hour=timezone.now().replace(minute=0, second=0, microsecond=0),
        notification_type="order_tracking",
        channel="email",
        received=12,
        delivered=9,
    )
    assert days_of(erased_ids) == DAYS
    before = rows_of(environment, ERASED, erased_ids)
    assert all(before.values()), before
    kept_before = rows_of(environment, KEPT, kept_ids)

    with Writers(environment) as writers:
        job, created = erasure_request(
            environment=environment, user_id=ERASED, requested_by="client secret"
        )
        assert created
        # Small batches: many short transactions interleaved with the writers'.
        job = erasure_run(job_id=job.pk, batch_size=2)
        written_during = len(writers.written)

    assert job.state == ErasureJob.State.DONE
    assert rows_of(environment, ERASED, erased_ids) == dict.fromkeys(before, 0)
    # Other users, the same user id in another environment, and the writers' rows: untouched.
    assert rows_of(environment, KEPT, kept_ids) == kept_before
    assert all(rows_of(other_environment, ERASED, same_user_elsewhere).values())
    assert Notification.objects.filter(id__in=writers.written).count() == len(writers.written)
    assert written_during >= 4
    rollup.refresh_from_db()
    assert (rollup.received, rollup.delivered) == (12, 9)

    n = DAYS * PER_DAY
    assert job.counts["logs_notification"] == n
    assert job.counts["logs_delivery"] == n
    assert job.counts["logs_event"] == n  # the factory's (the Received is folded: no row)
    assert job.counts["notifications_enduser"] == 1
    record = AccessRecord.objects.get(environment=environment, action=AccessRecord.Action.ERASE)
    assert (record.user_id, record.actor_name) == (ERASED, "client secret")
    assert record.at == job.requested_at
    assert record.row_count == job.rows_removed == sum(job.counts.values())
    assert record.filters["rows"] == job.counts

    # Running it again is safe and changes nothing.
    again = erasure_run(job_id=job.pk)
    assert again.counts == job.counts
    assert AccessRecord.objects.filter(action=AccessRecord.Action.ERASE).count() == 1


@pytest.fixture
def order_tracking(environment):
    notification_type = NotificationTypeFactory(environment=environment, key="order_tracking")
    ChannelTemplateFactory(notification_type=notification_type)
    return notification_type


def test_api_erases_with_202_and_job_then_a_new_send_is_recorded(
    environment, subscription, order_tracking, celery_eager
):
    erased_ids = seed(environment, ERASED, subscription)
    api = client_for(environment)

    response = api.delete(f"/api/v1/users/{ERASED}/data")
    assert response.status_code == 202, response.content
    job_id = response.json()["jobId"]
    assert response["Location"] == f"/api/v1/erasures/{job_id}"

    status = api.get(f"/api/v1/erasures/{job_id}")
    assert status.status_code == 200
    body = status.json()
    assert body["state"] == "done"
    assert body["rows"]["logs_notification"] == DAYS * PER_DAY
    assert body["rowsRemoved"] > 0
    assert not any(rows_of(environment, ERASED, erased_ids).values())

    # A send for the user afterwards is recorded as usual.
    sent = api.post(
        "/api/v1/notifications",
        data={"notificationId": "order_tracking", "user": {"id": ERASED, "email": "e@x.com"}},
        format="json",
    )
    assert sent.status_code in (200, 201, 202), sent.content
    assert Notification.objects.filter(environment=environment, user_id=ERASED).count() == 1


def test_a_second_request_while_queued_returns_the_same_job(environment):
    first, created = erasure_request(environment=environment, user_id=ERASED, requested_by="a")
    second, created_again = erasure_request(
        environment=environment, user_id=ERASED, requested_by="b"
    )
    assert created and not created_again
    assert first.pk == second.pk


def test_only_a_manage_credential_may_erase(environment, subscription):
    seed(environment, ERASED, subscription)
    read_send = ApiKeyFactory(environment=environment, scopes=["send", "read"])
    response = bearer_client(read_send.plain).delete(f"/api/v1/users/{ERASED}/data")
    assert response.status_code == 403
    assert "manage" in response.json()["message"]
    assert not ErasureJob.objects.exists()

    manage = ApiKeyFactory(environment=environment, scopes=["manage"])
    response = bearer_client(manage.plain).delete(f"/api/v1/users/{ERASED}/data")
    assert response.status_code == 202
    assert response.json()["requestedBy"] == f"API key {manage.prefix}…"


def test_another_tenant_cannot_erase_or_read_this_environments_jobs(environment, subscription):
    ids = seed(environment, ERASED, subscription)
    other = EnvironmentFactory(client_secret=SECRET + "-other")
    other_api = client_for(other, SECRET + "-other")

    # Its own credentials erase in its own environment only: this one's user stays.
    response = other_api.delete(f"/api/v1/users/{ERASED}/data")
    assert response.status_code == 202
    assert ErasureJob.objects.get().environment_id == other.id
    assert all(rows_of(environment, ERASED, ids).values())

    # This environment's client id with the other's secret: refused.
    forged = client_for(environment, SECRET + "-other")
    assert forged.delete(f"/api/v1/users/{ERASED}/data").status_code == 401

    job, _ = erasure_request(environment=environment, user_id=ERASED, requested_by="x")
    assert other_api.get(f"/api/v1/erasures/{job.pk}").status_code == 404
    assert client_for(environment).get(f"/api/v1/erasures/{job.pk}").status_code == 200


def test_the_sweeper_runs_a_job_whose_task_was_lost(environment, subscription, celery_eager):
    ids = seed(environment, ERASED, subscription)
    job = ErasureJob.objects.create(
        environment=environment,
        user_id=ERASED,
        requested_by="client secret",
        requested_at=timezone.now() - timedelta(minutes=10),
    )
    assert erasures_resume() == 1
    job.refresh_from_db()
    assert job.state == ErasureJob.State.DONE
    assert not any(rows_of(environment, ERASED, ids).values())


def test_bad_user_id_is_refused(environment):
    response = client_for(environment).delete(f"/api/v1/users/{'x' * 300}/data")
    assert response.status_code == 400
    assert "userId" in response.json()["message"]
    assert not ErasureJob.objects.exists()


def test_console_owners_erase_from_the_users_timeline_support_cannot(
    client, environment, subscription, celery_eager
):
    ids = seed(environment, ERASED, subscription)
    timeline = f"/admin/logs/notification/user/?environment={environment.id}&user={ERASED}"
    erase = f"/admin/logs/notification/user/erase/?environment={environment.id}&user={ERASED}"

    client.force_login(console_user(environment, Membership.Role.SUPPORT))
    page = client.get(timeline).content.decode()
    assert "Contact details" in page and 'id="erase-user"' not in page
    assert client.get(erase).status_code == 403
    assert client.post(erase).status_code == 403
    assert not ErasureJob.objects.exists()

    owner = console_user(environment, Membership.Role.OWNER)
    client.force_login(owner)
    page = client.get(timeline).content.decode()
    assert 'id="erase-user"' in page and "Erase this user's data…" in page
    confirm = client.get(erase).content.decode()
    assert "Yes, erase" in confirm and "cannot be undone" in confirm
    assert not ErasureJob.objects.exists()  # asking is not erasing

    done = client.post(erase, follow=True).content.decode()
    job = ErasureJob.objects.get()
    assert (job.state, job.requested_by_user, job.requested_by) == ("done", owner, owner.username)
    assert '<dd id="erasure-state">Done</dd>' in done
    assert f'<dd id="erasure-rows">{job.rows_removed}</dd>' in done
    assert not any(rows_of(environment, ERASED, ids).values())
    record = AccessRecord.objects.get(action=AccessRecord.Action.ERASE)
    assert (record.actor, record.user_id, record.row_count) == (owner, ERASED, job.rows_removed)

    # Another account's owner: not their environment.
    stranger = console_user(EnvironmentFactory(), Membership.Role.OWNER, username="stranger")
    client.force_login(stranger)
    assert client.post(erase).status_code == 404
