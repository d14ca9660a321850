"""Per-environment Twilio auth tokens at the receivers: a callback to `?env=<client id>` is
verified with that environment's own token when the console has one, and only with it; an
environment without one still uses TWILIO_AUTH_TOKEN. Real requests, real signatures."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test.utils import CaptureQueriesContext

from logs.models import Delivery
from notifications.models import TwilioCredentials
from notifications.services.upkeep import twilio_auth_token_set
from tests.accounts.test_crypto import encryption_keys
from tests.factories import EnvironmentFactory
from tests.webhooks.providers import TWILIO_TOKEN, TwilioSms, TwilioVoice, sent_delivery
from webhooks.models import InboxEntry, InboxState

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_settings", "celery_eager")]

OWN_TOKEN = "environment-a-own-twilio-token"
OWN_SID = "AC" + "a" * 32


def with_own_token(environment, token: str = OWN_TOKEN) -> TwilioCredentials:
    credentials = TwilioCredentials(environment=environment, account_sid=OWN_SID)
    twilio_auth_token_set(credentials=credentials, auth_token=token, save=False)
    credentials.save()
    return credentials


@pytest.mark.parametrize("provider_class", [TwilioSms, TwilioVoice], ids=["sms", "voice"])
def test_a_callback_signed_with_the_environments_own_token_is_stored_and_applied(
    client, django_capture_on_commit_callbacks, provider_class
):
    environment = EnvironmentFactory()
    with_own_token(environment)
    provider = provider_class(token=OWN_TOKEN)
    message_id = provider.new_message_id()
    notification = sent_delivery(
        environment=environment, channel=provider.channel, message_id=message_id
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = provider.post(client, message_id, provider.single_step,
                                 query=f"env={environment.client_id}")  # fmt: skip

    assert response.status_code == 200
    entry = InboxEntry.objects.get()
    assert (entry.environment_id, entry.state) == (environment.id, InboxState.PROCESSED)
    assert Delivery.objects.get(notification_id=notification.id).state == "delivered"


def test_the_install_token_is_refused_for_an_environment_with_its_own(client):
    environment = EnvironmentFactory()
    with_own_token(environment)
    provider = TwilioSms(token=TWILIO_TOKEN)  # the install-wide TWILIO_AUTH_TOKEN
    message_id = provider.new_message_id()
    notification = sent_delivery(environment=environment, channel="sms", message_id=message_id)

    response = provider.post(client, message_id, "delivered", query=f"env={environment.client_id}")

    assert response.status_code == 403
    assert b"X-Twilio-Signature" in response.content
    assert not InboxEntry.objects.exists()
    assert Delivery.objects.get(notification_id=notification.id).state == "sent"


def test_another_environments_token_is_refused(client):
    mine, theirs = EnvironmentFactory(), EnvironmentFactory()
    with_own_token(mine)
    with_own_token(theirs, token="the-other-tenants-token")

    response = TwilioSms(token="the-other-tenants-token").post(
        client, "SM" + "1" * 32, "delivered", query=f"env={mine.client_id}"
    )

    assert response.status_code == 403
    assert not InboxEntry.objects.exists()


def test_an_environment_without_its_own_token_uses_the_setting(client):
    with_own_token(EnvironmentFactory())  # another environment's token changes nothing here
    environment = EnvironmentFactory()
    # A row with only a from number: the install's account and token still apply.
    TwilioCredentials.objects.create(environment=environment, from_number="+15005550009")

    install = TwilioSms(token=TWILIO_TOKEN).post(
        client, "SM" + "2" * 32, "sent", query=f"env={environment.client_id}"
    )
    own_elsewhere = TwilioSms(token=OWN_TOKEN).post(
        client, "SM" + "3" * 32, "sent", query=f"env={environment.client_id}"
    )

    assert [install.status_code, own_elsewhere.status_code] == [200, 403]
    assert list(InboxEntry.objects.values_list("environment_id", flat=True)) == [environment.id]


def test_a_cleared_token_falls_back_to_the_setting(client):
    environment = EnvironmentFactory()
    credentials = with_own_token(environment)
    query = f"env={environment.client_id}"
    before = TwilioSms(token=TWILIO_TOKEN).post(client, "SM" + "4" * 32, "sent", query=query)

    twilio_auth_token_set(credentials=credentials, auth_token="")
    after = TwilioSms(token=TWILIO_TOKEN).post(client, "SM" + "4" * 32, "sent", query=query)

    assert [before.status_code, after.status_code] == [403, 200]


def test_an_undecryptable_token_answers_503_naming_the_fix(client):
    lost = Fernet.generate_key().decode()
    environment = EnvironmentFactory()
    with encryption_keys(lost):
        with_own_token(environment)

    response = TwilioSms(token=OWN_TOKEN).post(
        client, "SM" + "5" * 32, "sent", query=f"env={environment.client_id}"
    )

    assert response.status_code == 503
    assert b"SECRETS_ENCRYPTION_KEY" in response.content
    assert OWN_TOKEN.encode() not in response.content
    assert not InboxEntry.objects.exists()


def test_the_environment_and_its_token_are_read_in_one_query(client, django_assert_num_queries):
    environment = EnvironmentFactory()
    with_own_token(environment)
    install = TwilioSms()
    with CaptureQueriesContext(connection) as baseline:  # a callback naming no environment
        assert install.post(client, install.new_message_id(), "sent").status_code == 200
    own = TwilioSms(token=OWN_TOKEN)

    # The environment with its credentials in one query, then the same writes as without.
    with django_assert_num_queries(len(baseline.captured_queries) + 1):
        response = own.post(
            client, own.new_message_id(), "sent", query=f"env={environment.client_id}"
        )

    assert response.status_code == 200
