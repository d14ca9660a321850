"""Per-environment Twilio credentials: set in the console (the token write-only, stored
encrypted, scoped to the user's accounts) and used by sends (account SID, basic auth, from
number, and status callbacks naming the environment)."""

import base64
import html
import logging
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.crypto import secret_decrypt
from accounts.models import Membership
from logs.vocabulary import Channel
from notifications.models import TwilioCredentials
from notifications.services.upkeep import twilio_auth_token_set
from tests.accounts.test_crypto import encryption_keys, stored_row
from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory
from tests.notifications.conftest import TWILIO_INSTALL_SID, TWILIO_INSTALL_TOKEN
from tests.notifications.helpers import delivery, labels, send

pytestmark = pytest.mark.django_db

TOKEN = "per-environment-twilio-token-0001"
SID = "AC" + "e" * 32
ADD = "/admin/notifications/twiliocredentials/add/"
LIST = "/admin/notifications/twiliocredentials/"


def change_url(credentials: TwilioCredentials) -> str:
    return f"/admin/notifications/twiliocredentials/{credentials.pk}/change/"


def staff_of(account, role: str, *actions: str):
    user = UserFactory()
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="notifications",
            codename__in=[f"{action}_twiliocredentials" for action in actions],
        )
    )
    MembershipFactory(user=user, account=account, role=role)
    return user


def owner_of(account):
    return staff_of(account, Membership.Role.OWNER, "view", "add", "change", "delete")


def credentials_of(environment, token: str = TOKEN, **fields) -> TwilioCredentials:
    credentials = TwilioCredentials(environment=environment, account_sid=SID, **fields)
    twilio_auth_token_set(credentials=credentials, auth_token=token, save=False)
    credentials.save()
    return credentials


def form(credentials: TwilioCredentials, **changes) -> dict:
    return {
        "account_sid": credentials.account_sid,
        "from_number": credentials.from_number,
        "new_auth_token": "",
        **changes,
    }


def page(response) -> str:
    return html.unescape(response.content.decode())


# The console.


def test_an_owner_sets_the_token_stored_encrypted_and_never_shown_back(client, caplog):
    environment = EnvironmentFactory()
    client.force_login(owner_of(environment.account))

    with caplog.at_level(logging.DEBUG):
        response = client.post(
            ADD,
            {"environment": environment.pk, "account_sid": SID, "new_auth_token": TOKEN,
             "from_number": "+15005550007"},
        )  # fmt: skip

    assert response.status_code == 302, page(response)
    credentials = TwilioCredentials.objects.get(environment=environment)
    row = stored_row("notifications_twiliocredentials", credentials.pk)
    assert TOKEN not in row
    assert secret_decrypt(credentials.auth_token_encrypted) == TOKEN
    assert (credentials.account_sid, credentials.from_number) == (SID, "+15005550007")
    shown = page(client.get(change_url(credentials)))
    assert "Set (never shown)" in shown and SID in shown
    assert TOKEN not in shown and credentials.auth_token_encrypted not in shown
    assert TOKEN not in page(client.get(LIST))
    assert TOKEN not in caplog.text
    assert all(TOKEN not in entry.change_message for entry in LogEntry.objects.all())


def test_a_form_with_an_error_does_not_render_the_typed_token(client):
    environment = EnvironmentFactory()
    client.force_login(owner_of(environment.account))

    response = client.post(
        ADD,
        {"environment": environment.pk, "account_sid": SID, "new_auth_token": TOKEN,
         "from_number": "015005550007"},
    )  # fmt: skip

    assert response.status_code == 200
    assert "Enter the number in E.164 form" in page(response)
    assert TOKEN not in page(response)
    assert not TwilioCredentials.objects.exists()


def test_an_owner_replaces_keeps_and_clears_the_token(client):
    credentials = credentials_of(EnvironmentFactory())
    client.force_login(owner_of(credentials.environment.account))
    url = change_url(credentials)

    client.post(url, form(credentials, new_auth_token="the-replacement-token"))
    credentials.refresh_from_db()
    replaced = credentials.auth_token_encrypted
    assert credentials.auth_token_decrypted() == "the-replacement-token"

    client.post(url, form(credentials, from_number="+15005550008"))  # token left empty: kept
    credentials.refresh_from_db()
    assert (credentials.auth_token_encrypted, credentials.from_number) == (
        replaced,
        "+15005550008",
    )

    client.post(url, form(credentials, account_sid="", clear_auth_token="on"))
    credentials.refresh_from_db()
    assert (credentials.account_sid, credentials.auth_token_encrypted) == ("", "")
    assert "Not set" in page(client.get(url))


def test_a_token_and_its_account_sid_are_set_together(client):
    credentials = credentials_of(EnvironmentFactory())
    before = credentials.auth_token_encrypted
    client.force_login(owner_of(credentials.environment.account))

    cleared_alone = client.post(change_url(credentials), form(credentials, clear_auth_token="on"))
    both = client.post(
        change_url(credentials), form(credentials, new_auth_token="x-token", clear_auth_token="on")
    )
    sid_without_token = client.post(
        ADD, {"environment": EnvironmentFactory(account=credentials.environment.account).pk,
              "account_sid": SID, "new_auth_token": ""},
    )  # fmt: skip
    bad_sid = client.post(change_url(credentials), form(credentials, account_sid="SK123"))

    assert "An account SID needs its auth token" in page(cleared_alone)
    assert "Either type a new auth token or clear the stored one" in page(both)
    assert "An account SID needs its auth token" in page(sid_without_token)
    assert "AC followed by 32 hexadecimal digits" in page(bad_sid)
    credentials.refresh_from_db()
    assert (credentials.account_sid, credentials.auth_token_encrypted) == (SID, before)
    assert TwilioCredentials.objects.count() == 1


def test_another_accounts_staff_can_neither_see_nor_edit_it(client):
    credentials = credentials_of(EnvironmentFactory())
    before = credentials.auth_token_encrypted
    outsider_environment = EnvironmentFactory()
    client.force_login(owner_of(outsider_environment.account))

    listing = page(client.get(LIST))
    shown = client.get(change_url(credentials))
    edited = client.post(change_url(credentials), form(credentials, new_auth_token="hijacked"))
    added = client.post(
        ADD, {"environment": credentials.environment.pk, "account_sid": SID,
              "new_auth_token": "hijacked"},
    )  # fmt: skip
    add_page = page(client.get(ADD))

    assert str(credentials.environment) not in listing
    assert [shown.status_code, edited.status_code] == [404, 404]
    assert "Select a valid choice" in page(added)
    assert str(credentials.environment) not in add_page
    assert str(outsider_environment) in add_page
    credentials.refresh_from_db()
    assert credentials.auth_token_encrypted == before
    assert TwilioCredentials.objects.count() == 1


def test_support_staff_see_whether_a_token_is_set_but_no_input_and_no_token(
    client, django_assert_max_num_queries
):
    credentials = credentials_of(EnvironmentFactory())
    credentials_of(EnvironmentFactory(account=credentials.environment.account))
    client.force_login(staff_of(credentials.environment.account, Membership.Role.SUPPORT, "view"))

    with django_assert_max_num_queries(12):
        listing = client.get(LIST)
    shown = page(client.get(change_url(credentials)))
    refused = client.post(change_url(credentials), form(credentials, new_auth_token="mine-now"))

    assert listing.status_code == 200 and "Set (never shown)" in page(listing)
    assert "Set (never shown)" in shown and TOKEN not in shown
    assert 'name="new_auth_token"' not in shown and "New auth token" not in shown
    assert refused.status_code == 403
    credentials.refresh_from_db()
    assert credentials.auth_token_decrypted() == TOKEN


# Sending.


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


BODY = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "number": "+14155550100"},
    "mergeTags": {"order_id": "A-1"},
    "forceChannels": ["SMS"],
}


def test_a_send_uses_the_environments_own_twilio_account(
    client, environment, auth, order_tracking, twilio, django_capture_on_commit_callbacks
):
    credentials_of(environment, from_number="+15005550009")

    notification = send(client, environment, auth, BODY, django_capture_on_commit_callbacks)

    [request] = twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["auth"] == basic(SID, TOKEN)
    assert request["form"]["From"] == "+15005550009"
    assert request["form"]["StatusCallback"] == (
        f"https://notify.example.com/webhooks/twilio/sms/?env={environment.client_id}"
    )
    assert labels(notification, Channel.SMS) == ["Sending", "Sent"]
    assert delivery(notification, Channel.SMS).provider == "twilio"


def test_an_environment_without_credentials_sends_with_the_install_account(
    client, environment, auth, order_tracking, twilio, django_capture_on_commit_callbacks
):
    credentials_of(EnvironmentFactory())  # another environment's account is not used

    send(client, environment, auth, BODY, django_capture_on_commit_callbacks)

    [request] = twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{TWILIO_INSTALL_SID}/Messages.json"
    assert request["auth"] == basic(TWILIO_INSTALL_SID, TWILIO_INSTALL_TOKEN)
    assert request["form"]["From"] == "+15005550006"
    assert request["form"]["StatusCallback"].endswith(f"?env={environment.client_id}")


# Key rotation.


def rotate_secrets() -> str:
    out = StringIO()
    call_command("rotate_secrets", stdout=out)
    return out.getvalue()


def test_rotate_secrets_moves_twilio_tokens_to_the_newest_key_so_old_keys_can_go():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with encryption_keys(old):
        environment = EnvironmentFactory()
        credentials = credentials_of(environment)
        credentials_of(EnvironmentFactory(account=environment.account), token="second-token")
    with encryption_keys(new, old):
        output = rotate_secrets()
        again = rotate_secrets()

    assert "Re-encrypted 2 Twilio auth token(s); 0 already were" in output
    assert "Re-encrypted 0 Twilio auth token(s); 2 already were" in again
    assert TOKEN not in output + again
    with encryption_keys(new):  # the old key is retired
        assert TwilioCredentials.objects.get(pk=credentials.pk).auth_token_decrypted() == TOKEN


def test_rotate_secrets_changes_nothing_when_a_twilio_token_is_unreadable():
    lost, old, new = (Fernet.generate_key().decode() for _ in range(3))
    with encryption_keys(old):
        environment = EnvironmentFactory()
        readable = credentials_of(EnvironmentFactory(account=environment.account))
    with encryption_keys(lost):
        credentials_of(environment)
    secret_before = environment.client_secret_encrypted

    with encryption_keys(new, old), pytest.raises(CommandError) as excinfo:
        rotate_secrets()

    assert f"id {environment.pk}" in str(excinfo.value)
    assert "Nothing was changed" in str(excinfo.value)
    environment.refresh_from_db()
    assert environment.client_secret_encrypted == secret_before  # the client secrets too
    assert TwilioCredentials.objects.get(pk=readable.pk).auth_token_encrypted == (
        readable.auth_token_encrypted
    )
