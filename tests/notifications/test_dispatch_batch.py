"""A task's batch of notifications is dispatched together (notifications.dispatch
.notifications_dispatch): its round trips to PostgreSQL are shared, so each notification
more in a batch costs a bounded few, and every notification ends as it would alone."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from logs.models import Notification
from logs.vocabulary import Channel
from notifications.dispatch import notifications_dispatch
from notifications.models import Outbox, SandboxMessage
from notifications.services.sends import notification_send
from notifications.tasks import notification_dispatch_batch_task
from notifications.wire import send_request_parse
from tests.notifications.factories import UserPreferenceFactory
from tests.notifications.helpers import email_and_sms_body as body
from tests.notifications.helpers import labels, refreshed, timeline

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sandbox(settings):
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    settings.SEND_RETRY_BACKOFF_SECONDS = 0


def accepted(environment, bodies) -> list:
    """Notifications accepted (their dispatch not run: the test's transaction never
    commits, so nothing enqueued on commit runs)."""
    return [
        notification_send(
            environment=environment, send_request=send_request_parse(b), raw_request=b
        ).notification_id
        for b in bodies
    ]


def round_trips(environment, first: int, count: int) -> int:
    ids = accepted(environment, [body(i) for i in range(first, first + count)])
    with CaptureQueriesContext(connection) as queries:
        # The task a server process's burst of sends enqueues (config/batching.py), run here.
        outcomes = notification_dispatch_batch_task([str(i) for i in ids])
    assert outcomes == ["dispatched"] * count
    return len(queries)


def test_each_notification_more_in_a_batch_costs_a_bounded_few_round_trips(
    environment, order_tracking
):
    small = round_trips(environment, 0, 5)
    large = round_trips(environment, 100, 25)
    per_notification = (large - small) / 20
    # Up to DISPATCH_CALLS_PER_TRANSACTION calls of a channel share two transactions (their
    # Sendings, their outcomes: each one statement for all) and the sandbox's one INSERT, so
    # a batch within it costs the same round trips whatever its size. With a transaction per
    # provider call this was 16 a notification more (two channels, each a transaction
    # and the sandbox's row); dispatched one at a time, 45.
    assert per_notification <= 1, (small, large)
    assert SandboxMessage.objects.count() == 2 * 30
    assert not Outbox.objects.exists()


def test_a_batch_ends_each_notification_as_it_would_alone(environment, order_tracking):
    UserPreferenceFactory(
        environment=environment, user_id="usr_1", notification_type="order_tracking",
        channel=Channel.SMS,
    )  # fmt: skip
    bodies = [
        body(0),
        body(1),  # SMS off by the user
        body(2, email="", number=""),  # no address on either channel
        body(3, email="reject@example.com"),  # refused by the sandbox at send
        body(4),
    ]
    ids = accepted(environment, bodies)
    assert notifications_dispatch(notification_ids=[*ids, ids[0]]) == ["dispatched"] * 5 + [
        "dispatched"
    ]
    notifications = {n.id: n for n in Notification.objects.filter(id__in=ids)}
    by_index = [notifications[i] for i in ids]
    for index in (0, 4):
        for channel in (Channel.EMAIL, Channel.SMS):
            assert labels(by_index[index], channel) == ["Sending", "Sent"], (index, channel)
    assert labels(by_index[1], Channel.EMAIL) == ["Sending", "Sent"]
    assert labels(by_index[1], Channel.SMS) == ["Ignored - User Preference"]
    assert labels(by_index[2], Channel.EMAIL) == ["Failed"]
    assert labels(by_index[2], Channel.SMS) == ["Failed"]
    assert labels(by_index[3], Channel.EMAIL) == ["Sending", "Failed"]
    assert labels(by_index[3], Channel.SMS) == ["Sending", "Sent"]
    statuses = [refreshed(n).status for n in by_index]
    assert statuses == ["received", "received", "failure", "failure", "received"]
    assert not Outbox.objects.exists()
    # Dispatched again (a task redelivered after a crash): nothing to do, nothing sent twice.
    assert set(notifications_dispatch(notification_ids=ids)) == {
        "nothing to do: dispatched already, or not due"
    }
    assert SandboxMessage.objects.count() == 6  # reject@ is refused before it is kept


@pytest.mark.parametrize(("per_transaction", "per_channel"), [(50, 2), (2, 4)])
def test_a_batchs_calls_share_their_recording_transactions(
    environment, order_tracking, settings, per_transaction, per_channel
):
    """Up to DISPATCH_CALLS_PER_TRANSACTION provider calls of a channel are recorded
    together: one transaction writes their Sendings, the calls are made, and one writes their
    outcomes (with the next calls' Sendings). Six notifications of two channels: with room
    for all six, two transactions a channel; two at a time, four. (One call per transaction,
    as before, made seven a channel.) Each timeline still reads as a dispatch alone's."""
    settings.DISPATCH_CALLS_PER_TRANSACTION = per_transaction
    ids = accepted(environment, [body(i) for i in range(6)])
    with CaptureQueriesContext(connection) as queries:
        assert notifications_dispatch(notification_ids=ids) == ["dispatched"] * 6
    # A recording transaction writes its events in one statement (none of its notifications
    # has two events in it): the Sendings insert their deliveries, the Sents update them
    # (both folded into the delivery: no event row, logs.timeline).
    writes = [
        q
        for q in queries.captured_queries
        if 'INSERT INTO "logs_delivery"' in q["sql"] or 'UPDATE "logs_delivery"' in q["sql"]
    ]
    assert len(writes) == 2 * per_channel
    for notification in Notification.objects.filter(id__in=ids):
        assert [(label, channel) for label, channel, _ in timeline(notification)] == [
            ("Received", ""),
            ("Sending", Channel.EMAIL),
            ("Sent", Channel.EMAIL),
            ("Sending", Channel.SMS),
            ("Sent", Channel.SMS),
        ]
    assert SandboxMessage.objects.count() == 12


def test_no_call_starts_over_a_second_after_its_claims_renewal(
    environment, order_tracking, settings
):
    """The claims are renewed before a round of calls, and a call not started within a
    second of that renewal waits for the next round (renewed first): a slow provider's calls
    are covered by a fresh claim however many share a transaction. Emails through an SMTP
    server that takes 0.9 s per message: the third would start 1.8 s after the renewal."""
    import asyncio
    import time

    from tests.helpers import smtp_server

    settings.DISPATCH_CALLS_PER_TRANSACTION = 32
    renewals: list[float] = []
    arrivals: list[float] = []

    def note_renewal(execute, sql, params, many, context):
        if "SET claimed_until" in sql:
            renewals.append(time.monotonic())
        return execute(sql, params, many, context)

    with smtp_server(settings, email_provider=True) as inbox:
        keep = inbox.handle_DATA

        async def slow_data(server, session, envelope):
            arrivals.append(time.monotonic())
            await asyncio.sleep(0.9)
            return await keep(server, session, envelope)

        inbox.handle_DATA = slow_data
        ids = accepted(environment, [{**body(i), "forceChannels": ["EMAIL"]} for i in range(3)])
        with connection.execute_wrapper(note_renewal):
            assert notifications_dispatch(notification_ids=ids) == ["dispatched"] * 3
    assert len(inbox.messages) == 3
    assert len(renewals) >= 2
    for arrival in arrivals:
        last_renewal = max(renewal for renewal in renewals if renewal < arrival)
        # Started within a second of it; the rest is the SMTP conversation before DATA.
        assert arrival - last_renewal < 1.5, (arrival - last_renewal, renewals, arrivals)
    for notification in Notification.objects.filter(id__in=ids):
        assert labels(notification, Channel.EMAIL) == ["Sending", "Sent"]


def test_twilio_calls_of_one_transaction_are_made_at_once(environment, order_tracking, twilio):
    """Twilio's calls are HTTPS requests that wait on Twilio: the calls of one recording
    transaction go `TwilioProvider.concurrency` at a time (the database reads before them
    stay in the dispatching thread). Eight SMS to a Twilio that takes 0.4 s to answer each:
    one after another, it never had two at once (and they took 3.2 s)."""
    twilio.delay = 0.4
    ids = accepted(environment, [{**body(i), "forceChannels": ["SMS"]} for i in range(8)])
    assert notifications_dispatch(notification_ids=ids) == ["dispatched"] * 8
    assert len(twilio.requests) == 8
    assert twilio.most_at_once >= 4
    for notification in Notification.objects.filter(id__in=ids):
        assert labels(notification, Channel.SMS) == ["Sending", "Sent"]


def test_an_error_of_ours_mid_batch_keeps_what_was_answered_and_sends_the_rest_later(
    environment, order_tracking, twilio
):
    """Twilio's answer to one SMS of a batch cannot be read (a 201 whose body is a proxy's
    page, not Twilio's JSON: the client raises, not a ProviderError). The SMS answered
    before are recorded Sent, the task fails, and no call is started after it; the next
    dispatch sends the unanswered ones (the garbled one again: it may have gone) and never
    the answered ones twice."""
    # The first call to arrive is garbled (which one that is depends on the batch's order),
    # answered once the provider's eight calls are all in (a loaded machine may start the last
    # of them late); the good answers come well after it: a loaded machine may take a few
    # tenths of a second to read it, and a good answer read first would start a ninth call.
    twilio.delay = 1.5
    bodies = [{**body(i), "forceChannels": ["SMS"]} for i in range(12)]
    twilio.garble_next = 1
    twilio.garble_when_requests = 8
    ids = accepted(environment, bodies)
    with pytest.raises(ValueError):
        notifications_dispatch(notification_ids=ids)
    # TwilioProvider makes 8 calls at once: the garbled one stopped the other four.
    numbers = [r["form"]["To"] for r in twilio.requests]
    assert len(numbers) == 8, numbers
    answered = set(numbers) - twilio.garbled
    notifications = Notification.objects.filter(id__in=ids)
    assert len(notifications) == 12
    for notification in notifications:
        expected = ["Sending", "Sent"] if notification.number in answered else ["Sending"]
        assert labels(notification, Channel.SMS) == expected, notification.number

    twilio.garbled = set()
    notifications_dispatch(notification_ids=ids)
    again = [r["form"]["To"] for r in twilio.requests[8:]]
    assert sorted(again) == sorted(n.number for n in notifications if n.number not in answered)
    for notification in Notification.objects.filter(id__in=ids):
        assert labels(notification, Channel.SMS)[-1] == "Sent", notification.number
