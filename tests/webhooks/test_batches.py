"""Processing in batches: one task takes the pending rows others enqueued, each row exactly
once; a row a worker claimed and never finished (it died) is taken again once its lease is
over; a row waiting for its retry is not taken before its backoff."""

import tempfile
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.utils import timezone

from logs.models import Delivery, Event, Notification
from tests.conftest import queued_messages
from tests.factories import EnvironmentFactory
from tests.webhooks.providers import TwilioSms, sent_delivery
from webhooks import services
from webhooks.inbox import inbox_batcher
from webhooks.models import InboxEntry, InboxState
from webhooks.tasks import inbox_process_batch_task

# Not eager, and on-commit callbacks are not run: rows are stored and wait, as they would
# for a worker busy with earlier ones.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_settings")]
sms = TwilioSms()


def _delivered_events(notification) -> int:
    return Event.objects.filter(notification_id=notification.id, kind="delivered").count()


def _stored(client, message_id, step="delivered") -> InboxEntry:
    response = sms.post(client, message_id, step)
    assert response.status_code == 200, response.content
    return InboxEntry.objects.order_by("-id").first()


def _sent_messages(count: int) -> tuple[list[str], list]:
    """`count` SMS messages of one environment, Sent: their ids and notifications."""
    environment = EnvironmentFactory()
    message_ids = [sms.new_message_id() for _ in range(count)]
    notifications = [
        sent_delivery(environment=environment, channel="sms", message_id=message_id)
        for message_id in message_ids
    ]
    return message_ids, notifications


def test_one_task_processes_the_rows_others_enqueued_each_once(client):
    message_ids, notifications = _sent_messages(5)
    rows = [_stored(client, message_id) for message_id in message_ids]

    assert services.inbox_process(inbox_ids=[rows[2].id]) == {InboxState.PROCESSED: 5}
    # The other rows' tasks find nothing left to do.
    assert services.inbox_process(inbox_ids=[rows[0].id]) == {}

    assert [_delivered_events(n) for n in notifications] == [1] * 5
    assert set(InboxEntry.objects.values_list("state", "attempts", "events_recorded")) == {
        (InboxState.PROCESSED, 1, 1)
    }
    assert set(
        Delivery.objects.filter(notification_id__in=[n.id for n in notifications]).values_list(
            "state", flat=True
        )
    ) == {"delivered"}


def test_a_batch_finishes_each_row_in_its_own_state(client):
    environment = EnvironmentFactory()
    known = sms.new_message_id()
    notification = sent_delivery(environment=environment, channel="sms", message_id=known)
    processed = _stored(client, known)
    unknown = _stored(client, sms.new_message_id())
    unparseable = _stored(client, sms.new_message_id(), step="no-such-status")

    states = services.inbox_process(inbox_ids=[processed.id])

    assert states == {InboxState.PROCESSED: 1, InboxState.PENDING: 1, InboxState.UNPARSEABLE: 1}
    rows = {row.id: row for row in InboxEntry.objects.all()}
    assert rows[processed.id].state == InboxState.PROCESSED
    assert rows[processed.id].environment_id == environment.id
    assert rows[unknown.id].state == InboxState.PENDING
    assert "No delivery has message id" in rows[unknown.id].error
    assert rows[unparseable.id].state == InboxState.UNPARSEABLE
    assert rows[unparseable.id].error
    assert _delivered_events(notification) == 1


def test_a_row_waiting_for_its_retry_is_not_taken_before_its_backoff(client):
    message_id = sms.new_message_id()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        row = _stored(client, message_id)
        assert services.inbox_process(inbox_ids=[row.id]) == {InboxState.PENDING: 1}

        assert services.inbox_process(inbox_ids=[row.id]) == {}
        assert InboxEntry.objects.get().attempts == 1

        clock.shift(timedelta(seconds=3))  # the first backoff is 2 s
        assert services.inbox_process() == {InboxState.PENDING: 1}
        assert InboxEntry.objects.get().attempts == 2


def test_rows_of_a_worker_that_died_mid_batch_are_processed_after_its_lease(
    client, django_capture_on_commit_callbacks, celery_eager
):
    environment = EnvironmentFactory()
    message_id = sms.new_message_id()
    notification = sent_delivery(environment=environment, channel="sms", message_id=message_id)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        row = _stored(client, message_id)
        # A worker claims the row and dies before it finishes it.
        claimed = services._rows_claim([row.id], 9, timezone.now())
        assert [entry.id for entry in claimed] == [row.id]

        # Leased: no other task takes it meanwhile, and it is still pending.
        assert services.inbox_process(inbox_ids=[row.id]) == {}
        assert InboxEntry.objects.get().state == InboxState.PENDING

        # Once the lease is over the sweeper hands it to a worker again.
        clock.shift(timedelta(seconds=31))
        with django_capture_on_commit_callbacks(execute=True):
            assert services.inbox_sweep() == 1

    row = InboxEntry.objects.get()
    assert (row.state, row.attempts) == (InboxState.PROCESSED, 2)
    assert _delivered_events(notification) == 1


def test_a_task_takes_its_own_rows_first_then_the_oldest_others(client):
    environment = EnvironmentFactory()
    message_ids = [sms.new_message_id() for _ in range(4)]
    for message_id in message_ids:
        sent_delivery(environment=environment, channel="sms", message_id=message_id)
    rows = [_stored(client, message_id) for message_id in message_ids]

    # Its two rows (the newest) and one other (the oldest): limit 3.
    assert services.inbox_process(inbox_ids=[rows[3].id, rows[2].id], limit=3) == {
        InboxState.PROCESSED: 3
    }
    states = dict(InboxEntry.objects.values_list("id", "state"))
    assert [states[row.id] for row in rows] == [
        InboxState.PROCESSED, InboxState.PENDING, InboxState.PROCESSED, InboxState.PROCESSED,
    ]  # fmt: skip


def test_a_full_batch_enqueues_a_task_for_the_next(
    client, django_capture_on_commit_callbacks, celery_eager
):
    message_ids, notifications = _sent_messages(5)
    for message_id in message_ids:
        _stored(client, message_id)  # their own tasks have not run yet

    with django_capture_on_commit_callbacks(execute=True):
        services.inbox_process(limit=2)  # as a task whose row another took: at most 1 row

    assert [_delivered_events(n) for n in notifications] == [1] * 5
    assert not InboxEntry.objects.filter(state=InboxState.PENDING).exists()


def test_a_burst_of_stored_callbacks_leaves_as_one_message_naming_each_row_once(
    client, django_capture_on_commit_callbacks, celery_broker, monkeypatch
):
    # The receiver only hands the row's id to the batcher (config/batching.py): its thread
    # sends one message per burst, on the real Redis broker, without the request waiting.
    # The burst's window is made longer than any burst (a loaded machine's included) and the
    # batch exactly its size: the thread sends when the last id arrives, all in one message.
    message_ids = [sms.new_message_id() for _ in range(30)]
    monkeypatch.setattr(inbox_batcher, "max_wait", 60.0)
    monkeypatch.setattr(inbox_batcher, "max_batch", len(message_ids))
    rows = []
    for message_id in message_ids:  # each request commits and hands its id over, one by one
        with django_capture_on_commit_callbacks(execute=True):
            rows.append(_stored(client, message_id))

    # The batcher's thread may still be finishing an earlier test's send to a stalled broker
    # (up to the transport's 5 s socket timeout) before it takes this burst.
    messages = queued_messages(celery_broker, expected=len(rows), timeout=20.0)
    assert [task for task, _ in messages] == ["webhooks.tasks.inbox_process_batch_task"]
    [(_, named)] = messages
    assert sorted(int(inbox_id) for inbox_id in named) == sorted(row.id for row in rows)


def test_a_batch_task_processes_the_rows_it_names(client, celery_eager):
    message_ids, notifications = _sent_messages(3)
    rows = [_stored(client, message_id) for message_id in message_ids]

    # As the worker runs the message: ids as strings (JSON).
    result = inbox_process_batch_task.delay([str(row.id) for row in rows]).get()

    assert result == {InboxState.PROCESSED: 3}
    assert [_delivered_events(n) for n in notifications] == [1] * 3


@pytest.mark.django_db(transaction=True)
def test_a_notification_locked_too_long_holds_back_its_own_callback_only(client):
    """A batch whose write fails (here: one notification's row lock held past lock_timeout by
    another transaction) is retried row by row: the other callbacks are recorded, and the one
    that failed again stays pending, leased, to be taken again later."""
    message_ids, notifications = _sent_messages(3)
    rows = [_stored(client, message_id) for message_id in message_ids]
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                list(Notification.objects.select_for_update().filter(id=notifications[0].id))
                locked.set()
                release.wait(timeout=20)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        states = services.inbox_process(inbox_ids=[row.id for row in rows])
    finally:
        release.set()
        holder.join(timeout=20)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert states == {InboxState.PROCESSED: 2}
    assert [_delivered_events(n) for n in notifications] == [0, 1, 1]
    first = InboxEntry.objects.get(id=rows[0].id)
    assert (first.state, first.attempts) == (InboxState.PENDING, 1)
    assert first.next_attempt_at > timezone.now()  # leased: not taken again at once


def _server_waits(run) -> int:
    """How many times `run()` waits for PostgreSQL's answer: the Sync and simple Query
    messages libpq sends (its protocol trace), one per round trip."""
    connection.ensure_connection()
    with tempfile.TemporaryFile("w+") as trace:
        connection.connection.pgconn.trace(trace.fileno())
        try:
            run()
        finally:
            connection.connection.pgconn.untrace()
        trace.seek(0)
        sent = [line.split("\t") for line in trace.read().splitlines()]
    return sum(1 for fields in sent if fields[1:2] == ["F"] and fields[3] in ("Sync", "Query"))


def test_a_batch_records_its_events_in_a_number_of_round_trips_that_does_not_grow(client):
    waits = {}
    for count in (1, 2, 8):  # the first prepares the statements (a wait each, once)
        message_ids, notifications = _sent_messages(count)
        rows = [_stored(client, message_id) for message_id in message_ids]
        processed = {}

        def process(rows=rows, processed=processed):
            processed.update(services.inbox_process(inbox_ids=[row.id for row in rows]))

        waits[count] = _server_waits(process)
        assert processed == {InboxState.PROCESSED: count}
        assert [_delivered_events(n) for n in notifications] == [1] * count

    # The batch's event writes go as one statement (logs.recording.PendingWrites): six more
    # callbacks in the batch cost no more waits for the server (before: one more each).
    assert waits[8] == waits[2], waits
