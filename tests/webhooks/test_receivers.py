"""Bad input at the receivers, and tenant isolation: a clear 4xx (or 503 for a receiver that
is not configured), nothing half-written, never a 500."""

import json

import pytest
from django.test import override_settings
from django.utils import timezone

from logs.models import Delivery
from tests.factories import EnvironmentFactory
from tests.webhooks.providers import (
    PROVIDERS,
    PUBLIC_BASE_URL,
    WEBHOOK_SETTINGS,
    AmazonSes,
    Postmark,
    TwilioSms,
    TwilioVoice,
    basic_auth,
    sent_delivery,
)
from webhooks.models import InboxEntry, InboxState

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_settings", "celery_eager")]


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_a_body_over_one_megabyte_is_refused_with_413(client, provider):
    request = provider.request(provider.new_message_id(), provider.single_step, timezone.now())
    request["data"] = "x" * (1024 * 1024 + 1)

    response = client.post(**request)

    assert response.status_code == 413
    assert not InboxEntry.objects.exists()


def test_an_authentic_but_unreadable_twilio_callback_is_stored_unparseable(
    client, django_capture_on_commit_callbacks
):
    request = TwilioSms().request("SM1", "sent", timezone.now())
    fields = {"Hello": "world"}  # signed correctly, but no MessageSid / MessageStatus
    request = TwilioSms()._signed(fields, "")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(**request)

    assert response.status_code == 200
    entry = InboxEntry.objects.get()
    assert entry.state == InboxState.UNPARSEABLE
    assert "MessageSid" in entry.error
    assert bytes(entry.body) == b"Hello=world"


def test_an_authentic_but_malformed_ses_body_is_stored_unparseable(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            AmazonSes().path,
            data="{not json",
            content_type="application/json",
            headers={"Authorization": basic_auth(), "X-Amz-Sns-Message-Type": "Notification"},
        )

    assert response.status_code == 200
    assert InboxEntry.objects.get().state == InboxState.UNPARSEABLE


def test_a_malformed_ses_body_without_the_secret_is_refused(client):
    response = client.post(
        AmazonSes().path,
        data="{not json",
        content_type="application/json",
        headers={"Authorization": basic_auth("hook:wrong")},
    )

    assert response.status_code == 400
    assert not InboxEntry.objects.exists()


def test_an_unknown_twilio_status_is_stored_unparseable(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = TwilioSms().post(client, "SM" + "0" * 32, "teleported")

    assert response.status_code == 200
    assert InboxEntry.objects.get().state == InboxState.UNPARSEABLE


def test_an_unknown_env_parameter_is_refused(client):
    response = TwilioSms().post(client, "SM" + "0" * 32, "sent", query="env=nosuchclient")

    assert response.status_code == 403
    assert not InboxEntry.objects.exists()


def test_a_callback_for_another_tenants_message_never_changes_it(
    client, django_capture_on_commit_callbacks
):
    provider = TwilioVoice()
    victim, attacker = EnvironmentFactory(), EnvironmentFactory()
    message_id = provider.new_message_id()
    notification = sent_delivery(environment=victim, channel="call", message_id=message_id)

    with django_capture_on_commit_callbacks(execute=True):
        response = provider.post(client, message_id, "completed",
                                 query=f"env={attacker.client_id}")  # fmt: skip

    assert response.status_code == 200
    assert Delivery.objects.get(notification_id=notification.id).state == "sent"
    entry = InboxEntry.objects.get()
    assert (entry.state, entry.environment_id) == (InboxState.PENDING, attacker.id)


def test_a_message_id_shared_by_two_environments_is_rejected_without_env(
    client, django_capture_on_commit_callbacks
):
    provider = TwilioSms()
    message_id = provider.new_message_id()
    first = sent_delivery(environment=EnvironmentFactory(), channel="sms", message_id=message_id)
    sent_delivery(environment=EnvironmentFactory(), channel="sms", message_id=message_id)

    with django_capture_on_commit_callbacks(execute=True):
        provider.post(client, message_id, "delivered")

    entry = InboxEntry.objects.get()
    assert entry.state == InboxState.REJECTED
    assert "?env=" in entry.error
    assert Delivery.objects.get(notification_id=first.id).state == "sent"

    # With the environment named, the same callback applies to that tenant's message only.
    with django_capture_on_commit_callbacks(execute=True):
        provider.post(client, message_id, "delivered", query=f"env={first.environment.client_id}")
    assert Delivery.objects.get(notification_id=first.id).state == "delivered"


def test_twilio_signature_for_the_host_header_is_refused(client):
    # Signed for the Host header we happened to see (a proxy's, here the test client's
    # http://testserver), not for PUBLIC_BASE_URL (https://hooks.example.test): refused.
    provider = TwilioSms(base_url="http://testserver")

    response = provider.post(client, provider.new_message_id(), "sent")

    assert response.status_code == 403
    assert not InboxEntry.objects.exists()


def test_twilio_signature_for_public_base_url_is_accepted_whatever_the_host_header(client):
    # Signed for the address Twilio was given (PUBLIC_BASE_URL, https://hooks.example.test)
    # while the request arrives with another Host header (the test client's http://testserver,
    # as behind a proxy that rewrites it): accepted and stored.
    provider = TwilioSms(base_url=PUBLIC_BASE_URL)

    response = provider.post(client, provider.new_message_id(), "sent")

    assert response.status_code == 200
    assert InboxEntry.objects.count() == 1


def test_receivers_answer_503_until_their_secret_is_set(client):
    anymail_without_mailgun = {
        name: value
        for name, value in WEBHOOK_SETTINGS["ANYMAIL"].items()
        if name != "MAILGUN_WEBHOOK_SIGNING_KEY"
    }
    with override_settings(TWILIO_AUTH_TOKEN=""):
        twilio = TwilioSms().post(client, "SM" + "0" * 32, "sent")
    with override_settings(ANYMAIL=anymail_without_mailgun):
        mailgun = client.post("/webhooks/email/mailgun/tracking/", data="{}",
                              content_type="application/json",
                              headers={"Authorization": basic_auth()})  # fmt: skip
    with override_settings(ANYMAIL={"WEBHOOK_SECRET": []}):
        postmark = Postmark().post(client, "m-1", "delivered")

    assert [twilio.status_code, mailgun.status_code, postmark.status_code] == [503, 503, 503]
    assert b"TWILIO_AUTH_TOKEN" in twilio.content
    assert b"ANYMAIL_WEBHOOK_SECRET" in postmark.content
    assert not InboxEntry.objects.exists()


def test_every_anymail_esp_has_a_storing_receiver(client):
    # Every ESP anymail supports is routed to our inbox: an unsigned post is refused by
    # anymail's own validation (400), not answered by anymail's signal-firing view.
    from webhooks.receivers.email import email_providers

    providers = email_providers()
    assert {"amazon_ses", "mailgun", "postmark", "sendgrid", "brevo", "sparkpost"} <= set(providers)
    for esp in providers:
        path = (
            "/webhooks/email/mandrill/" if esp == "mandrill" else f"/webhooks/email/{esp}/tracking/"
        )
        response = client.post(path, data=json.dumps({}), content_type="application/json")
        assert response.status_code in (400, 401, 503), (esp, response.status_code)
    assert not InboxEntry.objects.exists()
