"""The log tables' database guarantees: only the vocabulary's words get in, whoever writes
the row, and every key holds environment_id (Citus distributes the log by it)."""

import pytest
from django.db import IntegrityError, connection, transaction

from tests.logs.factories import DeliveryFactory, EventFactory, NotificationFactory

LOG_TABLES = {
    "logs_notification": ["id", "created_at", "environment_id"],
    "logs_delivery": ["id", "notification_created_at", "environment_id"],
    "logs_event": ["id", "notification_created_at", "environment_id"],
}


def _refused(constraint: str, factory, **fields) -> None:
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        factory(**fields)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("constraint", "factory", "fields"),
    [
        ("notification_status_valid", NotificationFactory, {"status": "done"}),
        ("delivery_channel_valid", DeliveryFactory, {"channel": "fax"}),
        ("delivery_state_valid", DeliveryFactory, {"state": "lost"}),
        # An unknown sub-kind breaks two checks; PostgreSQL names the first it tries.
        (
            "delivery_state_detail_(valid|fits_channel)",
            DeliveryFactory,
            {"state_detail": "eaten"},
        ),
        ("event_kind_valid", EventFactory, {"kind": "archived"}),
        (
            "event_sub_kind_fits_(kind|channel)",
            EventFactory,
            {"kind": "failed", "sub_kind": "eaten"},
        ),
        ("event_channel_valid", EventFactory, {"kind": "sent", "channel": "fax"}),
        # Busy is how a call was delivered, never why something failed.
        (
            "event_sub_kind_fits_kind",
            EventFactory,
            {"kind": "failed", "sub_kind": "busy", "channel": "call"},
        ),
        # A busy line is the call's: never an email's, whatever wrote the row.
        (
            "event_sub_kind_fits_channel",
            EventFactory,
            {"kind": "delivered", "sub_kind": "busy", "channel": "email"},
        ),
        # A bounce names the email that bounced: a request-level event has no such reason.
        (
            "event_sub_kind_fits_channel",
            EventFactory,
            {"kind": "failed", "sub_kind": "bounce", "channel": ""},
        ),
        (
            "delivery_state_detail_fits_channel",
            DeliveryFactory,
            {"channel": "sms", "state": "delivered", "state_detail": "no_answer"},
        ),
    ],
)
def test_a_word_outside_the_vocabulary_is_refused_by_the_database(constraint, factory, fields):
    _refused(constraint, factory, **fields)


@pytest.mark.django_db
def test_the_vocabulary_gets_in():
    """The checks are not so tight that real rows fail: each kind of row the log holds."""
    notification = NotificationFactory(status="failure")
    delivery = DeliveryFactory(
        notification=notification, channel="call", state="delivered", state_detail="no_answer"
    )
    EventFactory(notification=notification, kind="delivered", sub_kind="busy", channel="call")
    EventFactory(notification=notification, kind="failed", channel="")  # request-level
    EventFactory(notification=notification, kind="ignored", sub_kind="plan_limit")
    assert delivery.pk


def _key_columns(table: str) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.conname, array_agg(a.attname ORDER BY k.ordinality)
            FROM pg_constraint c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ordinality)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = %s::regclass AND c.contype IN ('p', 'u')
            GROUP BY c.conname
            """,
            [table],
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db
@pytest.mark.parametrize("table", sorted(LOG_TABLES))
def test_every_key_of_the_log_holds_the_environment(table):
    keys = _key_columns(table)
    assert keys[f"{table}_pkey"] == LOG_TABLES[table]
    missing = [name for name, columns in keys.items() if "environment_id" not in columns]
    assert not missing, f"{table}: keys Citus could not distribute by environment: {missing}"
