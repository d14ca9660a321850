"""How the log stores what is big and read rarely (content, request, merge tags, payloads):
compressed with the server's best method (lz4 when it has it) and moved out of the row once
a row is toasted (toast_tuple_target), on every partition and on each day created later; and
each thing said once (the provider's event id in the dedupe key only). What the API answers
stays exactly what was stored."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from logs.models import Event
from logs.partitions import (
    COMPRESSED_COLUMNS,
    LOG_TOAST_TUPLE_TARGET,
    PARTITIONED_TABLES,
    partition_create,
    partition_name,
)
from logs.services import event_record, notification_create
from tests.factories import EnvironmentFactory
from tests.logs.api.conftest import client_for

SECRET = "secret-for-the-content-storage-tests"
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
# A few kB of a real email's repetitive markup: over the 2032-byte row at which PostgreSQL
# starts toasting, compressible to a fraction.
HTML = "<tr><td style='padding:8px'>Order A-1042: 1 x Trail shoes</td></tr>\n" * 60
# Small beside it, but over toast_tuple_target: compressed only because of it.
TEXT = "Order A-1042: 1 x Trail shoes. " * 20
REQUEST = {"notificationId": "order_tracking", "user": {"id": "u-1"}, "note": "x" * 3000}


def _server_method() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        return "lz4" if cursor.fetchone()[0] else "pglz"


def _compression_of(tables: list[str]) -> dict[tuple[str, str], str]:
    """(table, column) -> 'lz4' / 'pglz' / '' (the server's default) of the compressed columns."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attrelid::regclass::text, attname, attcompression FROM pg_attribute "
            "WHERE attrelid = ANY(%s::regclass[]) AND attnum > 0 AND NOT attisdropped",
            [tables],
        )
        rows = cursor.fetchall()
    names = {"l": "lz4", "p": "pglz", "": ""}
    return {
        (table, column): names[method]
        for table, column, method in rows
        if column in COMPRESSED_COLUMNS[_parent(table)]
    }


def _parent(table: str) -> str:
    return next(parent for parent in COMPRESSED_COLUMNS if table.startswith(parent))


def _reloptions(names: list[str]) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)", [names])
        return {name: options or [] for name, options in cursor.fetchall()}


def _partitions() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = ANY(%s::regclass[])",
            [list(COMPRESSED_COLUMNS)],
        )
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.django_db
def test_every_partition_and_parent_compresses_the_content_with_the_servers_method():
    method = _server_method()
    tables = [*COMPRESSED_COLUMNS, *_partitions()]
    assert any(name.endswith("_default") for name in tables)
    compression = _compression_of(tables)
    assert len(compression) == sum(len(COMPRESSED_COLUMNS[_parent(table)]) for table in tables)
    assert set(compression.values()) == {method}
    options = _reloptions(_partitions())
    assert all(
        f"toast_tuple_target={LOG_TOAST_TUPLE_TARGET}" in options[name] for name in _partitions()
    ), options


@pytest.mark.django_db
def test_a_new_day_partition_compresses_the_content_and_toasts_it_early():
    day = datetime(2031, 5, 6, tzinfo=UTC).date()
    partition_create(day=day)
    names = [partition_name(table, day) for table in COMPRESSED_COLUMNS]
    assert set(_compression_of(names).values()) == {_server_method()}
    options = _reloptions([partition_name(table, day) for table in PARTITIONED_TABLES])
    for name in names:
        assert f"toast_tuple_target={LOG_TOAST_TUPLE_TARGET}" in options[name]
    # The inbox is not one of the three log tables: left as it was.
    assert options[partition_name("webhooks_inbox", day)] == []


@pytest.mark.django_db
def test_stored_content_is_compressed_and_the_api_answers_it_exactly():
    environment = EnvironmentFactory(client_secret=SECRET)
    notification = notification_create(
        environment_id=environment.id, notification_type="order_tracking", user_id="u-1",
        email="ada@example.com", request=REQUEST, merge_tags={"orderId": "A-1042"},
        created_at=T0,
    )  # fmt: skip
    event_record(
        notification_id=notification.id, notification_created_at=T0, kind="sending",
        channel="email", source="pipeline", occurred_at=T0 + timedelta(seconds=1),
        delivery_fields={"provider": "sandbox", "destination": "ada@example.com",
                         "subject": "Your order", "html": HTML, "text": TEXT},
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(html), pg_column_size(text) < octet_length(text) "
            "FROM logs_delivery WHERE notification_id = %s",
            [notification.id],
        )
        html_method, text_shrunk = cursor.fetchone()
        cursor.execute(
            "SELECT pg_column_compression(request) FROM logs_notification WHERE id = %s",
            [notification.id],
        )
        (request_method,) = cursor.fetchone()
    method = _server_method()
    assert html_method == method
    assert request_method == method
    # Under the default toast_tuple_target (2032) the row fits once the HTML is compressed
    # and the text stays as it is; at 512 it is compressed too.
    assert text_shrunk
    response = client_for(environment, SECRET).get(f"/api/v1/logs/{notification.id}")
    assert response.status_code == 200
    body = response.json()
    [delivery] = body["deliveries"]
    assert (delivery["html"], delivery["text"], delivery["subject"]) == (HTML, TEXT, "Your order")
    assert body["request"] == REQUEST


@pytest.mark.django_db
def test_the_providers_event_id_is_stored_once_in_the_dedupe_key():
    environment = EnvironmentFactory()
    notification = notification_create(
        environment_id=environment.id, notification_type="welcome", user_id="u-1", created_at=T0
    )
    spec = {
        "notification_id": notification.id, "kind": "sent", "channel": "sms",
        "source": "twilio", "provider_event_id": "SM42:sent",
        "occurred_at": T0 + timedelta(seconds=1), "payload": {"MessageSid": "SM42"},
    }  # fmt: skip
    first = event_record(**spec)
    assert first.created
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT dedupe_key, provider_event_id FROM logs_event WHERE id = %s",
            [first.event.id],
        )
        assert cursor.fetchone() == ("twilio:SM42:sent", "")
    # Said once, and still enough to know the same callback again.
    again = event_record(**spec)
    assert not again.created and again.event.id == first.event.id
    assert Event.objects.filter(notification_id=notification.id, kind="sent").count() == 1
