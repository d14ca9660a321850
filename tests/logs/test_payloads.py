"""A provider's callback payload is stored compressed with its provider's dictionary
(logs/payloads.py), and the notification page still shows exactly the JSON received: callbacks
through the real receivers (Twilio, Amazon SES, SendGrid, Postmark, Mailgun), the sandbox's,
rows written before (jsonb), and a source without a dictionary (stored plain). Content
retention clears it, erasure removes it, and a shipped dictionary never changes."""

import hashlib
import html
import json
import random
import re
import string
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Environment, Membership
from logs.content_retention import environment_content_clear
from logs.erasure import erasure_request, erasure_run
from logs.models import Event
from logs.payload_dictionaries import PAYLOAD_DICTIONARIES
from logs.payloads import SOURCE_DICTIONARIES, event_payload
from logs.services import event_record
from tests.console.conftest import bounced_email, console_user
from tests.console.test_pages import page_of
from tests.factories import EnvironmentFactory
from tests.webhooks import conftest as webhook_fixtures
from tests.webhooks.providers import (
    PROVIDERS,
    AmazonSes,
    SendGrid,
    TwilioSms,
    TwilioVoice,
    sent_delivery,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_settings", "celery_eager")]
# The webhook tests' fixtures: the providers' secrets, and callbacks processed in-process.
webhook_settings = webhook_fixtures.webhook_settings
celery_eager = webhook_fixtures.celery_eager

_RAW_PAYLOAD = re.compile(r"<summary>Raw payload</summary><pre>(.*?)</pre>", re.S)


def shown_payloads(client, notification) -> list:
    """The raw payloads of the notification page's timeline, parsed, in timeline order, as an
    owner reads them revealed (unmasked)."""
    environment = Environment.objects.get(pk=notification.environment_id)
    client.force_login(console_user(environment, role=Membership.Role.OWNER))
    response = client.post(page_of(notification).replace("change/", "reveal/"))
    assert response.status_code == 200
    page = response.content.decode()
    return [json.loads(html.unescape(text)) for text in _RAW_PAYLOAD.findall(page)]


def received(provider, request) -> object:
    """The payload the provider sent, as its receiver keeps it (the form's fields; the ESP's
    event for anymail)."""
    if isinstance(provider, TwilioSms | TwilioVoice):
        return dict(parse_qsl(request["data"], keep_blank_values=True))
    body = json.loads(request["data"])
    if isinstance(provider, AmazonSes):
        return json.loads(body["Message"])
    if isinstance(provider, SendGrid):
        return body[0]
    return body


def provider_events(notification) -> list[Event]:
    return list(
        Event.objects.filter(
            notification_id=notification.id, environment_id=notification.environment_id
        )
        .exclude(source__in=["api", "pipeline"])
        .order_by("occurred_at", "id")
    )


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_a_callback_is_stored_packed_and_shown_exactly_as_received(
    client, provider, django_capture_on_commit_callbacks
):
    message_id = provider.new_message_id()
    notification = sent_delivery(environment=EnvironmentFactory(), channel=provider.channel,
                                 message_id=message_id, provider=provider.provider)  # fmt: skip
    request = provider.request(message_id, provider.single_step, timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(**request).status_code == 200

    [event] = provider_events(notification)
    # Compressed with its provider's dictionary, named by the value's first byte; the jsonb
    # column left empty.
    assert event.payload is None
    assert event.payload_packed[0] == SOURCE_DICTIONARIES[event.source]
    assert len(event.payload_packed) < len(json.dumps(received(provider, request)))
    assert event_payload(event) == received(provider, request)
    assert shown_payloads(client, notification) == [received(provider, request)]


def test_a_sandbox_callback_is_stored_packed_and_shown(client):
    notification = bounced_email(EnvironmentFactory())

    [bounce] = provider_events(notification)

    assert bounce.source == "sandbox" and bounce.payload is None
    assert bounce.payload_packed[0] == SOURCE_DICTIONARIES["sandbox"]
    assert shown_payloads(client, notification)[-1] == {
        "event": "bounced",
        "recipient": "alice@example.com",
        "token_echo": "https://app.example.com/reset?token=tok_5ecr3t_abcdef",
    }


def _twilio_sms(environment, payload, *, source="twilio"):
    message_id = "SM" + "0" * 32
    notification = sent_delivery(environment=environment, channel="sms", message_id=message_id)
    event_record(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        channel="sms",
        kind="delivered",
        source=source,
        occurred_at=notification.created_at + timedelta(seconds=3),
        provider_event_id=f"{message_id}:delivered",
        payload=payload,
    )
    return notification


TWILIO_DELIVERED = {
    "MessageSid": "SM" + "ab" * 16,
    "SmsSid": "SM" + "ab" * 16,
    "MessageStatus": "delivered",
    "SmsStatus": "delivered",
    "AccountSid": "AC" + "1" * 32,
    "From": "+15005550006",
    "To": "+14155550100",
    "ApiVersion": "2010-04-01",
}


def test_the_live_timeline_shows_a_packed_payload(client):
    """The page's live feed (new lines while the status is Received) renders them too."""
    environment = EnvironmentFactory()
    notification = _twilio_sms(environment, TWILIO_DELIVERED)
    assert provider_events(notification)[0].payload_packed is not None
    client.force_login(console_user(environment))

    feed = client.get(page_of(notification).replace("change/", "events.json") + "?after=0")

    lines = "".join(feed.json()["lines"])
    shown = [json.loads(html.unescape(text)) for text in _RAW_PAYLOAD.findall(lines)]
    assert shown == [TWILIO_DELIVERED]


def test_a_row_written_before_shows_its_jsonb_payload(client):
    """Rows written before payloads were packed keep theirs in jsonb, and still show."""
    notification = _twilio_sms(EnvironmentFactory(), TWILIO_DELIVERED)
    [event] = provider_events(notification)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE logs_event SET payload = %s::jsonb, payload_packed = NULL "
            "WHERE environment_id = %s AND notification_id = %s AND id = %s",
            [json.dumps(TWILIO_DELIVERED), event.environment_id, event.notification_id, event.id],
        )

    [old] = provider_events(notification)

    assert old.payload == TWILIO_DELIVERED and old.payload_packed is None
    assert shown_payloads(client, notification) == [TWILIO_DELIVERED]


def test_a_source_without_a_dictionary_is_stored_plain(client):
    notification = _twilio_sms(EnvironmentFactory(), TWILIO_DELIVERED, source="carrier_pigeon")

    [event] = provider_events(notification)

    assert event.payload == TWILIO_DELIVERED and event.payload_packed is None
    assert shown_payloads(client, notification) == [TWILIO_DELIVERED]


def test_a_payload_that_does_not_get_smaller_is_stored_plain(client):
    noise = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=60))
    notification = _twilio_sms(EnvironmentFactory(), {"Noise": noise})

    [event] = provider_events(notification)

    assert event.payload == {"Noise": noise} and event.payload_packed is None
    assert shown_payloads(client, notification) == [{"Noise": noise}]


def test_every_json_value_comes_back_as_it_was_received(client):
    value = {
        **TWILIO_DELIVERED,
        "ErrorMessage": 'Ünïcödé ✓ 中文 "quoted" \\ back\tslash\nnew line',
        "Nested": {"list": [1, -2, 3.25, 1e100, 12345678901234567890, True, False, None]},
        "Empty": {"object": {}, "list": [], "text": ""},
        "Emoji": "📨",
    }
    notification = _twilio_sms(EnvironmentFactory(), value)

    [event] = provider_events(notification)

    assert event.payload_packed is not None
    assert event_payload(event) == value
    assert shown_payloads(client, notification) == [value]


def test_a_list_payload_is_packed_too():
    notification = _twilio_sms(EnvironmentFactory(), [TWILIO_DELIVERED, TWILIO_DELIVERED])

    [event] = provider_events(notification)

    assert event.payload_packed is not None
    assert event_payload(event) == [TWILIO_DELIVERED, TWILIO_DELIVERED]


def test_content_retention_clears_a_packed_payload():
    environment = EnvironmentFactory(content_retention_days=1)
    notification = _twilio_sms(environment, TWILIO_DELIVERED)
    assert provider_events(notification)[0].payload_packed is not None

    environment_content_clear(environment=environment, now=timezone.now() + timedelta(days=2))

    [event] = provider_events(notification)
    assert (event.payload, event.payload_packed, event_payload(event)) == (None, None, None)


def test_erasure_removes_a_packed_payload():
    environment = EnvironmentFactory()
    notification = _twilio_sms(environment, TWILIO_DELIVERED)
    assert provider_events(notification)[0].payload_packed is not None

    job, _ = erasure_request(
        environment=environment, user_id=notification.user_id, requested_by="test"
    )
    erasure_run(job_id=job.pk)

    assert not Event.objects.filter(
        notification_id=notification.id, environment_id=environment.id
    ).exists()


# A stored payload decodes only with the exact bytes of its dictionary: these never change.
# A new dictionary gets a new id (logs/payload_dictionaries.py).
SHIPPED_SHA256 = {
    1: "9203f43567e5c53ca7c8f47f06ded06ab54e603643fa00111de57fcec15e2c6b",  # twilio
    2: "6c5941d759a78a979b1c107db7ecef60b8dab22b9b5b9029bc4ed3b1120ee226",  # amazon ses
    3: "a460ac153321fa1a6b47254fce322c3575b3bd11c6a3cacbfaae32c44f10f4c1",  # sendgrid
    4: "c8eca086834bed6bb167991bf1e33834c4bf3e9ed35ea72c0aee2e0ff1347ec7",  # mailgun
    5: "bdc4201ec029b4d4a59493c294560ac5b3899358a367c706e6b44bcf29647033",  # postmark
    6: "bcd7f31f88c833a3776a0e9b591264ab838078c99e4b94ab3e6914043306892e",  # sandbox
}


def test_a_shipped_dictionary_never_changes():
    digests = {
        id_: hashlib.sha256(dictionary).hexdigest()
        for id_, dictionary in PAYLOAD_DICTIONARIES.items()
    }
    assert {id_: digests.get(id_) for id_ in SHIPPED_SHA256} == SHIPPED_SHA256
    assert all(1 <= id_ <= 255 for id_ in PAYLOAD_DICTIONARIES)
    assert set(SOURCE_DICTIONARIES.values()) <= set(PAYLOAD_DICTIONARIES)
