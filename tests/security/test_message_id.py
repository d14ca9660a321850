"""Issue 16, item 10: twice-sent after a crash. Sending is at least once: a worker that dies
after the mail server took a message but before Sent was recorded leaves the channel at
Sending, and the next worker sends it again. The repeat must carry the same Message-ID (derived
from the tracking id and the channel), so the receiving side can tell it is one message; before,
every attempt made a new random one and the user got two different emails.

Both ways a repeat happens are tried against a real SMTP server (aiosmtpd) that keeps what it
was given: the client giving up on a server slow to answer the DATA (an in-process retry), and
a real Celery worker SIGKILLed while the server holds the message (the sweeper's re-run)."""

import asyncio
import email
import email.policy
import json
import threading

import pytest
import redis
from aiosmtpd.controller import Controller

from config.celery import app as celery_app
from logs.models import Delivery, Notification
from logs.vocabulary import Channel
from tests.notifications import conftest as send_fixtures
from tests.notifications.fakes import free_port
from tests.notifications.helpers import delivery, labels, rows_and_folded, send
from tests.notifications.processes import Processes, child_database_url, wait_for

environment = send_fixtures.environment
auth = send_fixtures.auth
order_tracking = send_fixtures.order_tracking

BODY = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "alice@example.com"},
    "mergeTags": {"first_name": "Alice", "order_id": "A-1"},
    "forceChannels": ["EMAIL"],
}


class _SlowFirstAnswer:
    """Keeps every message; answers the first one's DATA only after `stall` seconds (the
    message is already in the server's hands: a real MTA would deliver it)."""

    def __init__(self, stall: float):
        self.stall = stall
        self.messages = []
        self.first_arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        if len(self.messages) == 1:
            self.first_arrived.set()
            await asyncio.sleep(self.stall)
        return "250 OK"

    def message_ids(self) -> list[str]:
        return [
            email.message_from_bytes(m.content, policy=email.policy.default)["Message-ID"]
            for m in self.messages
        ]


@pytest.fixture
def slow_smtp():
    servers = []

    def start(stall: float) -> tuple[_SlowFirstAnswer, int]:
        handler = _SlowFirstAnswer(stall)
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        servers.append(controller)
        return handler, controller.port

    yield start
    for controller in servers:
        controller.stop()


@pytest.mark.django_db
def test_a_retry_after_the_server_took_the_message_repeats_its_message_id(
    client, environment, auth, order_tracking, settings, slow_smtp,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    server, port = slow_smtp(stall=3)
    settings.SEND_PROVIDERS = {"email": "email", "sms": "sandbox", "call": "sandbox"}
    settings.SEND_RETRY_BACKOFF_SECONDS = 0
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 1},
        }
    }
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        notification = send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    finally:
        celery_app.conf.task_always_eager = previous
    assert labels(notification, Channel.EMAIL) == ["Sending", "Sending", "Sent"]
    first, second = server.message_ids()
    assert first == second, "the repeat must carry the first attempt's Message-ID"
    assert delivery(notification, Channel.EMAIL).provider_message_id == first.strip("<>")
    assert str(notification.id) in first


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_a_worker_killed_while_the_server_holds_the_message_resends_the_same_message_id(
    client, environment, auth, order_tracking, redis_url, slow_smtp, tmp_path
):
    server, port = slow_smtp(stall=60)  # the first answer never comes before the kill
    redis.Redis.from_url(redis_url).delete("celery", "unacked", "unacked_index")
    processes = Processes(tmp_path)
    env = {
        "DATABASE_URL": child_database_url(),
        "REDIS_URL": redis_url,
        "SEND_PROVIDER_EMAIL": "email",
        # Plain SMTP to our server (outside tests the default is the development mailbox).
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "EMAIL_TIMEOUT": "30",
        "OUTBOX_SWEEP_INTERVAL_SECONDS": "1",
        "OUTBOX_SWEEP_AFTER_SECONDS": "3",
        "OUTBOX_LEASE_SECONDS": "5",
        "SEND_RETRY_BACKOFF_SECONDS": "0",
        "PUBLIC_BASE_URL": "http://127.0.0.1:9",
    }
    try:
        response = client.post(
            f"/{environment.client_id}/sender",
            data=json.dumps(BODY),
            content_type="application/json",
            headers=auth,
        )
        assert response.status_code == 200, response.content
        tracking_id = response.json()["trackingId"]
        worker = processes.worker(env)
        assert server.first_arrived.wait(120), processes.logs()
        processes.kill(worker)  # SIGKILL: the server has the message, Sent was never recorded
        processes.worker(env)
        wait_for(
            lambda: Delivery.objects.filter(notification_id=tracking_id, state="sent").exists(),
            timeout=120,
            what="the next worker to send the email again",
            details=processes.logs,
        )
    finally:
        processes.stop_all()
    first, second = server.message_ids()  # the user's mail server got it twice ...
    assert first == second  # ... as one message, which it can drop the second time
    # The first attempt's folded into the delivery (logs.timeline), the second a row.
    notification = Notification.objects.get(id=tracking_id)
    assert len(rows_and_folded(notification, kind="sending")) == 2
    stored = Delivery.objects.get(notification_id=tracking_id, channel=Channel.EMAIL)
    assert stored.provider_message_id == first.strip("<>")
