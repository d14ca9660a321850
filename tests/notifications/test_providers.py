"""Real providers against stand-ins speaking their protocols: Twilio's REST API (a local
HTTP server) and SMTP (aiosmtpd). Retries: each attempt in the timeline, one Failed at most."""

import email
import email.policy

import pytest

from logs.models import Event
from logs.vocabulary import Channel
from tests.helpers import smtp_server
from tests.notifications.conftest import TWILIO_INSTALL_SID as SID
from tests.notifications.factories import ChannelTemplateFactory
from tests.notifications.fakes import postmark_stand_in
from tests.notifications.helpers import delivery, labels, refreshed, send, sent, timeline

pytestmark = pytest.mark.django_db

BODY = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "alice@example.com", "number": "+14155550100"},
    "mergeTags": {"first_name": "Alice", "order_id": "A-1"},
}


def test_sms_through_twilio_records_the_message_sid(
    client, environment, auth, order_tracking, twilio, django_capture_on_commit_callbacks
):
    body = {**BODY, "forceChannels": ["SMS"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    [request] = twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["form"]["To"] == "+14155550100"
    assert request["form"]["From"] == "+15005550006"
    assert request["form"]["Body"] == "Order A-1 shipped"
    assert request["form"]["StatusCallback"] == (
        f"https://notify.example.com/webhooks/twilio/sms/?env={environment.client_id}"
    )
    sms = delivery(notification, Channel.SMS)
    assert sms.provider == "twilio" and sms.provider_message_id.startswith("SM")
    assert labels(notification, Channel.SMS) == ["Sending", "Sent"]


def test_call_through_twilio_rings_30_seconds_with_voice_callbacks(
    client, environment, auth, order_tracking, twilio, django_capture_on_commit_callbacks
):
    ChannelTemplateFactory(
        notification_type=order_tracking,
        channel=Channel.CALL,
        text="Your order {{ order_id }} shipped",
    )
    body = {**BODY, "forceChannels": ["CALL"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    [request] = twilio.requests
    form = request["form"]
    assert request["path"].endswith("/Calls.json")
    assert form["Timeout"] == "30"
    assert form["StatusCallback"] == (
        f"https://notify.example.com/webhooks/twilio/voice/?env={environment.client_id}"
    )
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert "<Say>Your order A-1 shipped</Say>" in form["Twiml"]
    assert delivery(notification, Channel.CALL).provider_message_id.startswith("CA")


def test_transient_errors_retry_each_attempt_visible_and_no_failed_event(
    client, environment, auth, order_tracking, twilio, django_capture_on_commit_callbacks
):
    twilio.failures = [(503, 20503, "Service Unavailable"), (429, 20429, "Too Many Requests")]
    body = {**BODY, "forceChannels": ["SMS"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    events = [(label, detail) for label, ch, detail in timeline(notification) if ch == "sms"]
    assert [label for label, _ in events] == ["Sending", "Sending", "Sending", "Sent"]
    assert "attempt 1 failed: Service Unavailable (code 20503)" in events[1][1]
    assert "attempt 2 failed: Too Many Requests (code 20429)" in events[2][1]
    assert len(twilio.requests) == 3
    assert refreshed(notification).status == "received"  # SMS waits for its callback


def test_transient_errors_past_the_last_attempt_record_one_failed(
    client, environment, auth, order_tracking, twilio, django_capture_on_commit_callbacks
):
    twilio.failures = [(500, 20500, "Internal Server Error")] * 3
    body = {**BODY, "forceChannels": ["SMS"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert labels(notification, Channel.SMS) == ["Sending", "Sending", "Sending", "Failed"]
    sms = delivery(notification, Channel.SMS)
    assert (sms.error_code, sms.error_message) == ("20500", "Internal Server Error")
    assert refreshed(notification).status == "failure"


def test_permanent_error_fails_at_once_with_the_provider_code(
    client, environment, auth, order_tracking, twilio, django_capture_on_commit_callbacks
):
    twilio.failures = [(400, 21211, "The 'To' number is not a valid phone number.")]
    body = {**BODY, "forceChannels": ["SMS"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert labels(notification, Channel.SMS) == ["Sending", "Failed"]
    assert delivery(notification, Channel.SMS).error_code == "21211"
    assert len(twilio.requests) == 1


def test_twilio_unreachable_is_transient(
    client,
    environment,
    auth,
    order_tracking,
    twilio,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # discard port: connection refused
    body = {**BODY, "forceChannels": ["SMS"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert labels(notification, Channel.SMS) == ["Sending", "Sending", "Sending", "Failed"]
    assert delivery(notification, Channel.SMS).error_code == "connection"


@pytest.fixture
def smtp(settings):
    with smtp_server(settings, email_provider=True) as inbox:
        yield inbox


def test_real_smtp_receives_the_stored_content_and_sent_is_final(
    client, environment, auth, order_tracking, smtp, django_capture_on_commit_callbacks
):
    body = {
        **BODY,
        "forceChannels": ["EMAIL"],
        "options": {
            "email": {
                "fromName": "Shop",
                "fromAddress": "shop@example.com",
                "ccAddresses": ["cc@example.com"],
            }
        },
    }
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    [envelope] = smtp.messages
    stored = delivery(notification, Channel.EMAIL)
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert envelope.rcpt_tos == [stored.destination_of(notification), "cc@example.com"]
    assert message["To"] == stored.destination_of(notification) == "alice@example.com"
    assert message["Subject"] == sent(notification, Channel.EMAIL).subject == "Order A-1 shipped"
    assert message["From"] == "Shop <shop@example.com>"
    sending = Event.objects.get(notification_id=notification.id, kind="sending")
    # The envelope says what the delivery does not: the sender and the other recipients
    # (not the delivery's destination, nor empty lists).
    assert sending.payload == {"from": message["From"], "cc": ["cc@example.com"]}
    assert message.get_body(("html",)).get_content().strip() == sent(notification, "email").html
    assert message.get_body(("plain",)).get_content().strip() == sent(notification, "email").text
    # Plain SMTP never reports delivery: the Message-ID we set is the id, and Sent is final.
    assert message["Message-ID"].strip("<>") == stored.provider_message_id
    assert stored.reports_delivery is False
    assert refreshed(notification).status == "success"


def test_smtp_server_down_is_retried_then_failed(
    client, environment, auth, order_tracking, settings, django_capture_on_commit_callbacks
):
    settings.SEND_PROVIDERS = {"email": "email", "sms": "sandbox", "call": "sandbox"}
    settings.SEND_RETRY_BACKOFF_SECONDS = 0
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 5},
        }
    }
    body = {**BODY, "forceChannels": ["EMAIL"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert labels(notification, Channel.EMAIL) == ["Sending", "Sending", "Sending", "Failed"]


@pytest.fixture
def postmark(settings):
    state, server = postmark_stand_in()
    settings.SEND_PROVIDERS = {"email": "email", "sms": "sandbox", "call": "sandbox"}
    settings.SEND_RETRY_BACKOFF_SECONDS = 0
    settings.MAILERS = {
        "default": {
            "BACKEND": "anymail.backends.postmark.EmailBackend",
            "OPTIONS": {"server_token": "pm-token", "api_url": state.url},
        }
    }
    yield state
    server.shutdown()
    server.server_close()


def test_anymail_esp_message_id_is_anymails_and_delivery_is_reported(
    client, environment, auth, order_tracking, postmark, django_capture_on_commit_callbacks
):
    body = {**BODY, "forceChannels": ["EMAIL"]}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    [request] = postmark.requests
    stored = delivery(notification, Channel.EMAIL)
    assert request["token"] == "pm-token"
    assert request["json"]["To"] == stored.destination_of(notification)
    assert request["json"]["Subject"] == sent(notification, Channel.EMAIL).subject
    assert request["json"]["HtmlBody"] == sent(notification, Channel.EMAIL).html
    # Postmark's MessageID (anymail's message_id), as its tracking webhooks will carry it.
    assert [stored.provider_message_id] == postmark.message_ids
    assert stored.reports_delivery is True
    assert refreshed(notification).status == "received"  # waits for Postmark's Delivered


def test_anymail_esp_5xx_is_retried_and_a_rejection_is_final(
    client, environment, auth, order_tracking, postmark, django_capture_on_commit_callbacks
):
    postmark.failures = [(500, 0, "Internal error")]
    body = {**BODY, "forceChannels": ["EMAIL"]}
    retried = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert labels(retried, Channel.EMAIL) == ["Sending", "Sending", "Sent"]
    postmark.failures = [(422, 300, "Invalid email request")]
    refused = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert labels(refused, Channel.EMAIL) == ["Sending", "Failed"]
    assert delivery(refused, Channel.EMAIL).error_code == "422"
