"""Helpers shared by test modules of several apps."""

import re
from contextlib import contextmanager

from django.contrib.messages.storage.cookie import MessageSerializer
from django.core import signing


def walk(client, url: str, data: dict) -> list:
    """POST `data` to `url` and follow every redirect by hand, so each response's own
    Set-Cookie headers can be read (the test client's follow=True keeps only the last)."""
    responses = [client.post(url, data)]
    while responses[-1].status_code in (301, 302, 303):
        responses.append(client.get(responses[-1]["Location"]))
    return responses


def cookie_texts(response) -> list[str]:
    """Every cookie the response sets, as sent and, for Django's signed message cookie (which
    may be compressed), as decoded: a secret in it must be found either way."""
    texts = []
    for morsel in response.cookies.values():
        texts.append(morsel.OutputString())
        try:
            decoded = signing.get_cookie_signer(salt="django.contrib.messages").unsign_object(
                morsel.value, serializer=MessageSerializer
            )
        except (signing.BadSignature, ValueError):
            continue
        texts.append(str([str(message) for message in decoded or []]))
    return texts


def assert_no_cookie_holds(responses, secret: str) -> None:
    for response in responses:
        where = getattr(response, "request", {}).get("PATH_INFO")
        for text in cookie_texts(response):
            assert secret not in text, f"a cookie set by {where} holds the secret"


class SmtpInbox:
    """An aiosmtpd handler keeping every message it is given (its envelope: mail_from,
    rcpt_tos, content)."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@contextmanager
def smtp_server(settings, *, email_provider: bool = False):
    """A real SMTP server (aiosmtpd) on a free port that Django's email API (MAILERS) hands its
    messages to; yields its SmtpInbox. `email_provider` also sends notification emails through
    Django's email API (the `email` provider) instead of the sandbox."""
    from aiosmtpd.controller import Controller

    from tests.notifications.fakes import free_port

    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    if email_provider:
        settings.SEND_PROVIDERS = {"email": "email", "sms": "sandbox", "call": "sandbox"}
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": controller.port, "timeout": 10},
        }
    }
    try:
        yield inbox
    finally:
        controller.stop()


def series_insert(table: str, columns: str, values: str, *, rows: int, **params) -> None:
    """Many rows at once, for tests at size: `INSERT INTO table (columns) SELECT values FROM
    generate_series(1, rows) AS n` (`values` may use n and %(name)s params), then ANALYZE (as
    autovacuum would have by the time a purge runs). Foreign-key triggers are off for the
    insert alone (session_replication_role): the rows must name parents that exist. The
    insert has no statement timeout (a loaded machine may take over a minute for a million
    rows); the connection's comes back after. In the caller's transaction, or in its own."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        [(timeout,)] = cursor.fetchall()
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {values} "
            "FROM generate_series(1, %(rows)s) AS n",
            {"rows": rows, **params},
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
        cursor.execute(f"ANALYZE {table}")
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [timeout])


def partition_of_relation(relation: str) -> str:
    """The partition a row's `tableoid::regclass` names. On Citus (DATABASE_CITUS) the row was
    read from a shard of that partition, named after it plus `_<shard id>`."""
    from django.conf import settings

    if settings.DATABASE_CITUS:
        return re.sub(r"_\d+$", "", relation)
    return relation


def skip_on_citus(reason: str) -> None:
    """Skip a test whose check means nothing on Citus, saying why (DATABASE_CITUS)."""
    import pytest
    from django.conf import settings

    if settings.DATABASE_CITUS:
        pytest.skip(f"not on Citus: {reason}")


def deliveries_recorded(notification, fields_by_channel: dict) -> dict[str, str]:
    """A Sending per channel with these delivery fields (an Ignored for user preference where
    they are empty), then each delivery's stored destination by channel."""
    from logs.models import Delivery
    from logs.services import event_record

    for channel, fields in fields_by_channel.items():
        event_record(
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            channel=channel,
            kind="sending" if fields else "ignored",
            sub_kind="" if fields else "user_preference",
            source="pipeline",
            delivery_fields=fields,
        )
    return dict(
        Delivery.objects.filter(notification_id=notification.id).values_list(
            "channel", "destination"
        )
    )
