"""The batcher that hands stored callbacks to the workers (config/batching.py): its queue stays
bounded when Redis stops answering, and no authentic callback is lost for it; what it sends
is what a real Celery worker runs, with no sweeper to make up for it."""

import contextlib
import logging
import socket
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from logs.models import Event
from tests.factories import EnvironmentFactory
from tests.webhooks import processes
from tests.webhooks.providers import TwilioSms, sent_delivery
from webhooks.inbox import SWEEP_GRACE, inbox_batcher
from webhooks.models import InboxEntry, InboxState
from webhooks.services import inbox_sweep

pytestmark = pytest.mark.usefixtures("webhook_settings")
sms = TwilioSms()
BOUND = 10


@contextlib.contextmanager
def _broker(url: str):
    """Celery publishing to `url`, not eagerly. Its connection and producer pools are made
    for the URL of their first use: they are dropped, to be made again for this one."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.broker_url

    def pools_forgotten():
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    celery_app.conf.task_always_eager, celery_app.conf.broker_url = False, url
    pools_forgotten()
    try:
        yield
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.broker_url = previous
        pools_forgotten()


def _sent_messages(count: int) -> tuple[list[str], list]:
    environment = EnvironmentFactory()
    message_ids = [sms.new_message_id() for _ in range(count)]
    notifications = [
        sent_delivery(environment=environment, channel="sms", message_id=message_id)
        for message_id in message_ids
    ]
    return message_ids, notifications


def _delivered(notifications) -> list[int]:
    return [
        Event.objects.filter(notification_id=n.id, kind="delivered").count() for n in notifications
    ]


@pytest.fixture
def redis_not_answering(monkeypatch):
    """The broker is a Redis that takes connections and never answers (a stalled server, a
    dropped route): the batcher's thread waits on it for its whole socket timeout."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1024)  # the kernel completes the handshakes; nobody reads
    monkeypatch.setattr(inbox_batcher, "max_queued", BOUND)
    with _broker(f"redis://127.0.0.1:{silent.getsockname()[1]}/0"):
        yield
        silent.close()
        # The batcher's thread may still be in a send to the silent server: the next test
        # starts once it is free (its sends then fail at once, nobody listens).
        deadline = time.monotonic() + 60
        while inbox_batcher.sending and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.mark.django_db
def test_with_redis_not_answering_the_queue_stays_bounded_and_the_sweeper_processes_every_callback(
    client, django_capture_on_commit_callbacks, redis_not_answering, caplog
):
    message_ids, notifications = _sent_messages(4 * BOUND)
    queued = []
    with caplog.at_level(logging.WARNING, logger="config.batching"):
        for message_id in message_ids:
            with django_capture_on_commit_callbacks(execute=True):
                response = sms.post(client, message_id, "delivered")
            # Every authentic callback is answered 200 at once: it is in PostgreSQL.
            assert response.status_code == 200, response.content
            queued.append(inbox_batcher.queued)

    # Memory stays bounded: four times the bound handed over, never more than it waiting.
    assert max(queued) == BOUND, queued
    assert "refusing more until it answers: the sweeper will enqueue them" in caplog.text
    # Nothing is lost: every callback is stored, pending, due for the sweeper.
    rows = InboxEntry.objects.filter(provider="twilio_sms")
    assert rows.count() == len(message_ids)
    assert set(rows.values_list("state", flat=True)) == {InboxState.PENDING}
    assert all(row.next_attempt_at <= timezone.now() + SWEEP_GRACE for row in rows)

    # Redis answers again (here: tasks run in-process); the sweeper, once the rows are due,
    # has every one processed, exactly once.
    celery_app.conf.task_always_eager = True  # _broker puts it back
    with (
        time_machine.travel(timezone.now() + SWEEP_GRACE + timedelta(seconds=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert inbox_sweep() == len(message_ids)
    assert _delivered(notifications) == [1] * len(message_ids)
    assert set(rows.values_list("state", flat=True)) == {InboxState.PROCESSED}
    inbox_batcher.flush()  # the ids it still holds: their rows are processed already


@pytest.fixture
def private_redis(tmp_path):
    port = processes.free_port()
    server = processes.redis_start(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    with _broker(url):
        yield url
    processes.stop(server)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_runs_the_batchers_messages(client, private_redis, tmp_path):
    message_ids, notifications = _sent_messages(12)
    for message_id in message_ids:  # each commits, and hands its row's id to the batcher
        assert sms.post(client, message_id, "delivered").status_code == 200
    inbox_batcher.flush()

    # A worker without beat: no sweeper, so only the batcher's messages can have the rows
    # processed. A message the worker could not read would be logged and dropped by it, and
    # its rows would stay pending.
    env = processes.project_env(redis_url=private_redis, public_base_url="http://127.0.0.1")
    worker = processes.worker_start(env, tmp_path, beat=False)
    try:
        done = processes.wait_for(
            lambda: not InboxEntry.objects.exclude(state=InboxState.PROCESSED).exists(),
            timeout=90,
        )
    finally:
        processes.stop(worker)
        connection.close()
    log = (tmp_path / "worker.log").read_text()
    assert done, (list(InboxEntry.objects.values_list("id", "state", "error")), log[-3000:])
    assert _delivered(notifications) == [1] * len(message_ids)
    assert "Received unregistered task" not in log and "Traceback" not in log, log[-3000:]
