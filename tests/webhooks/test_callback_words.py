"""What a failed callback says, as support staff and the logs API read it: the sandbox's
bounce said once, and a Twilio error code always with its description."""

import base64

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.factories import EnvironmentFactory
from tests.webhooks.providers import WEBHOOK_SETTINGS, sent_delivery
from webhooks.receivers.twilio import twilio_sms_events
from webhooks.sandbox import sandbox_callbacks_enqueue

SECRET = "secret-for-the-callback-words"


def sandbox_outcome(live_server, *, channel: str, destination: str) -> dict:
    """Send a sandbox message's callbacks through the live receivers, then read the
    notification back through the logs API (what an integrator sees; the console shows the
    same detail lines and delivery error)."""
    environment = EnvironmentFactory(client_secret=SECRET)
    message_id = f"sbx-{channel}-{destination}"
    notification = sent_delivery(environment=environment, channel=channel,
                                 message_id=message_id, provider="sandbox")  # fmt: skip
    settings = WEBHOOK_SETTINGS | {"PUBLIC_BASE_URL": live_server.url, "SANDBOX_CALLBACK_DELAY": 0}
    with override_settings(**settings):
        sandbox_callbacks_enqueue(
            environment_id=environment.id,
            channel=channel,
            provider_message_id=message_id,
            destination=destination,
        )
    credentials = base64.b64encode(f"{environment.client_id}:{SECRET}".encode()).decode()
    response = APIClient().get(
        f"/api/v1/logs/{notification.id}", HTTP_AUTHORIZATION=f"Basic {credentials}"
    )
    assert response.status_code == 200
    return response.json()


def failed_line(log: dict) -> str:
    [line] = [line for line in log["timeline"] if line["kind"] == "failed"]
    return line["detail"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_eager")
def test_a_sandbox_bounce_says_each_thing_once(live_server):
    log = sandbox_outcome(live_server, channel="email", destination="bounce@example.com")

    detail = failed_line(log)
    assert detail == (
        "bounced: The server was unable to deliver your message (ex: unknown user, mailbox "
        "not found); Sandbox: bounce@ is the magic address that always bounces."
    )
    [delivery] = log["deliveries"]
    assert delivery["errorCode"] == "bounced"
    assert delivery["errorMessage"] == detail.removeprefix("bounced: ")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_eager")
@pytest.mark.parametrize(
    ("number", "code", "description"),
    [
        ("+14155550001", "30003", "Unreachable destination handset"),
        ("+14155550002", "30008", "Unknown error"),
    ],
)
def test_a_twilio_error_code_comes_with_its_description(live_server, number, code, description):
    log = sandbox_outcome(live_server, channel="sms", destination=number)

    assert f"(error {code}: {description})" in failed_line(log)
    [delivery] = log["deliveries"]
    assert (delivery["errorCode"], delivery["errorMessage"]) == (code, description)


def test_twilio_own_error_message_wins_and_an_unlisted_code_says_where_to_look():
    form = "MessageSid=SM1&MessageStatus=undelivered&ErrorCode={}&ErrorMessage={}"
    [own] = twilio_sms_events(form.format("30003", "Handset+off").encode(), received_at=None)
    [unlisted] = twilio_sms_events(form.format("63016", "").encode(), received_at=None)

    assert (own.detail, own.error_message) == (
        "Twilio: undelivered (error 30003: Handset off)",
        "Handset off",
    )
    assert unlisted.detail == (
        "Twilio: undelivered (error 63016: see https://www.twilio.com/docs/api/errors/63016)"
    )
