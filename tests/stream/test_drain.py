"""A drain's work per message stays flat whatever the backlog: its claim reads about a batch's
worth of the subscriber's pending messages, not all of them; a batch's outcomes are written
in one statement; and many notifications go out at once while each one's events keep their
order, even when answers come back out of order and two drains run side by side."""

import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from logs.services import event_record
from stream.models import MessageState, StreamAttempt, StreamMessage
from stream.services.delivery import subscription_drain
from stream.services.subscriptions import subscription_create
from tests.factories import EnvironmentFactory
from tests.logs.factories import NotificationFactory

pytestmark = [pytest.mark.django_db(transaction=True)]

BACKLOG = 30_000


def subscribe(receiver, environment):
    subscription, receiver.secret = subscription_create(
        environment=environment, url=receiver.url, kinds=["sending", "sent", "delivered"]
    )
    return subscription


def backlog_seed(subscription, *, notifications: int, each: int, retry_until=None) -> None:
    """`notifications` x `each` pending messages, written as the outbox writes them (one
    row per event), oldest notification first."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO stream_streammessage (subscription_id, environment_id, notification_id,
                event_id, event_type, webhook_id, body, state, created_at, retry_until,
                next_attempt_at, attempt_count)
            SELECT %(subscription)s, %(environment)s, n.id, g, 'notification.sent',
                'msg_' || md5(random()::text), jsonb_build_object('type', 'notification.sent',
                'data', jsonb_build_object('trackingId', n.id, 'eventId', g)),
                'pending', %(now)s, %(retry_until)s, %(now)s, 0
            FROM generate_series(0, %(count)s - 1) AS g,
                LATERAL (SELECT md5(%(salt)s || (g / %(each)s))::uuid AS id) AS n
            ORDER BY g
            """,
            {
                "subscription": subscription.pk,
                "environment": subscription.environment_id,
                "count": notifications * each,
                "each": each,
                "salt": uuid.uuid4().hex,
                "now": now,
                "retry_until": retry_until or now + timedelta(days=1),
            },
        )


def _rows_read(plan: dict, table: str) -> int:
    """Rows the plan's scans of `table` read: returned and filtered out, times their loops."""
    read = 0
    if plan.get("Relation Name") == table and "Scan" in plan["Node Type"]:
        per_loop = plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)
        read += per_loop * plan["Actual Loops"]
    for child in plan.get("Plans", []):
        read += _rows_read(child, table)
    return read


def _claims(queries) -> list[str]:
    """The drain's statements that read or lease its backlog: all but those writing
    outcomes (attempts)."""
    return [
        q["sql"] for q in queries
        if "stream_streammessage" in q["sql"] and "stream_streamattempt" not in q["sql"]
    ]  # fmt: skip


@override_settings(STREAM_DRAIN_BATCH=100, STREAM_DRAIN_SECONDS=0.5)
def test_a_claim_reads_a_batch_of_the_backlog_not_all_of_it(receiver):
    """30,000 pending messages (10,000 notifications of 3 events): each claim of the drain,
    explained as it ran, reads a few hundred rows of the outbox, not the subscriber's whole
    backlog (before: every pending message, then a sort; or one scan of the backlog per
    message on fresh statistics)."""
    subscription = subscribe(receiver, EnvironmentFactory())
    backlog_seed(subscription, notifications=BACKLOG // 3, each=3)

    with CaptureQueriesContext(connection) as queries:
        assert subscription_drain(subscription_id=subscription.pk) > 0

    claims = _claims(queries.captured_queries)
    leases = [sql for sql in claims if "SKIP LOCKED" in sql.upper()]
    assert leases and len(claims) <= 3 * len(leases)
    assert StreamMessage.objects.filter(state=MessageState.PENDING).count() > BACKLOG // 2
    for sql in claims:
        with transaction.atomic(), connection.cursor() as cursor:  # the claim's lease undone
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            [[[explained]]] = cursor.fetchall()
            transaction.set_rollback(True)
        read = _rows_read(explained["Plan"], StreamMessage._meta.db_table)
        assert read < 2_000, (read, json.dumps(explained["Plan"])[:3000])


@override_settings(STREAM_DRAIN_BATCH=10, STREAM_DRAIN_CONCURRENCY=5)
def test_a_batchs_attempts_and_states_are_written_in_one_statement(receiver):
    """Delivered, retried and given up in one drain: every write of outcomes inserts the
    attempts and sets the states in the same statement (before: one INSERT, then an UPDATE
    per state and per backoff, and the subscriber's UPDATE, in a transaction)."""
    subscription = subscribe(receiver, EnvironmentFactory())
    backlog_seed(subscription, notifications=12, each=1)
    backlog_seed(subscription, notifications=6, each=1, retry_until=timezone.now())
    messages = list(StreamMessage.objects.order_by("id"))
    retried = {str(m.notification_id) for m in messages[:12:3]}
    given_up = {str(m.notification_id) for m in messages[12:15]}
    receiver.failing = retried | given_up

    with CaptureQueriesContext(connection) as queries:
        assert subscription_drain(subscription_id=subscription.pk) == 18

    states = {
        state: {str(n) for n in StreamMessage.objects.filter(state=state).values_list(
            "notification_id", flat=True)}
        for state in MessageState.values
    }  # fmt: skip
    assert states[MessageState.PENDING] == retried
    assert states[MessageState.GIVEN_UP] == given_up
    assert len(states[MessageState.DELIVERED]) == 18 - len(retried) - len(given_up)
    assert StreamAttempt.objects.count() == 18
    # What is not a claim (reading the backlog, leasing heads) writes outcomes.
    claims = _claims(queries.captured_queries)
    writes = [
        q["sql"] for q in queries.captured_queries
        if "stream_stream" in q["sql"] and q["sql"] not in claims
    ]  # fmt: skip
    assert writes
    for sql in writes:
        assert "INSERT INTO stream_streamattempt" in sql and "UPDATE stream_streammessage" in sql


@override_settings(STREAM_DRAIN_BATCH=8, STREAM_DRAIN_CONCURRENCY=4)
def test_two_drains_keep_each_notifications_order_while_answers_come_out_of_order(receiver):
    """Two drains side by side (as two worker processes take a backlog), answers delayed at
    random so they come back in any order: every event arrives once, each notification's in
    the order recorded, and never two of one notification at once."""
    environment = EnvironmentFactory()
    subscription = subscribe(receiver, environment)
    notifications = [NotificationFactory(environment=environment) for _ in range(10)]
    recorded = {str(n.id): [] for n in notifications}
    for kind in ("sending", "sent", "delivered"):
        for notification in notifications:
            event = event_record(
                notification_id=notification.id,
                notification_created_at=notification.created_at,
                kind=kind,
                channel="email",
                source="pipeline",
                dedupe_key=f"test:{kind}",
            ).event
            recorded[str(notification.id)].append(event.id)
    receiver.jitter = 0.08
    attempted = []

    def drain():
        try:
            attempted.append(subscription_drain(subscription_id=subscription.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sum(attempted) == 30
    arrived = {tracking_id: [] for tracking_id in recorded}
    for body in receiver.bodies():
        arrived[body["data"]["trackingId"]].append(body["data"]["eventId"])
    assert arrived == recorded
    assert receiver.rejected == 0
    assert receiver.most_in_flight > 1
    assert receiver.most_in_flight_of_a_notification == 1
    assert set(StreamMessage.objects.values_list("state", "attempt_count")) == {
        (MessageState.DELIVERED, 1)
    }
