"""New secrets (a rotated client secret, a new environment's secret, a new API key) are shown
once on a page of their own and never travel in a cookie (issue 6, item 5)."""

import base64
import html
import re

import pytest
from django.contrib import messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import ApiKey, Environment
from tests.factories import AccountFactory, EnvironmentFactory, UserFactory
from tests.helpers import assert_no_cookie_holds, walk

pytestmark = pytest.mark.django_db

SECRET_FIELD = re.compile(r'<input type="text" readonly size="70" value="([^"]+)"')


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def get_environment(client, authorization: str):
    return client.get("/api/v1/environment", headers={"authorization": authorization})


def shown_secrets(response) -> list[str]:
    return SECRET_FIELD.findall(response.content.decode())


def assert_shown_once(client, responses) -> None:
    """The last response is the secret page: no-store, and a second visit shows nothing."""
    page = responses[-1]
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    again = client.get(responses[-2]["Location"])
    assert again.status_code == 410
    assert "already shown once" in html.unescape(again.content.decode())
    assert not shown_secrets(again)


def test_rotated_client_secrets_are_shown_once_and_never_in_a_cookie(client):
    first = EnvironmentFactory(client_secret="old-secret-one")
    second = EnvironmentFactory(client_secret="old-secret-two")
    client.force_login(UserFactory(is_superuser=True))

    responses = walk(
        client,
        reverse("admin:accounts_environment_changelist"),
        {"action": "rotate_client_secret", "_selected_action": [first.pk, second.pk]},
    )

    secrets = shown_secrets(responses[-1])
    assert len(secrets) == 2
    for environment, secret in zip(
        sorted([first, second], key=lambda e: e.pk), secrets, strict=True
    ):
        environment.refresh_from_db()
        assert environment.client_secret() == secret
        assert get_environment(client, basic(environment.client_id, secret)).status_code == 200
        assert_no_cookie_holds(responses, secret)
    assert_shown_once(client, responses)


def test_new_environment_secret_is_shown_once_and_never_in_a_cookie(client):
    account = AccountFactory(name="Acme")
    client.force_login(UserFactory(is_superuser=True))

    responses = walk(
        client, reverse("admin:accounts_environment_add"), {"account": account.pk, "name": "stg"}
    )

    [secret] = shown_secrets(responses[-1])
    environment = Environment.objects.get(account=account, name="stg")
    assert environment.client_id in responses[-1].content.decode()
    assert environment.client_secret() == secret
    assert secret not in environment.client_secret_encrypted
    assert_no_cookie_holds(responses, secret)
    assert_shown_once(client, responses)
    change = client.get(reverse("admin:accounts_environment_change", args=[environment.pk]))
    assert secret not in change.content.decode()


def test_new_api_key_is_shown_once_and_never_in_a_cookie(client):
    environment = EnvironmentFactory()
    client.force_login(UserFactory(is_superuser=True))

    responses = walk(
        client,
        reverse("admin:accounts_apikey_add"),
        {"environment": environment.pk, "name": "ci", "scopes": "read"},
    )

    [plain] = shown_secrets(responses[-1])
    api_key = ApiKey.objects.get(environment=environment, name="ci")
    assert plain.startswith(api_key.prefix + "_")
    assert get_environment(client, f"Bearer {plain}").json()["scopes"] == ["read"]
    assert_no_cookie_holds(responses, plain)
    assert_shown_once(client, responses)


def test_the_cookie_check_finds_a_secret_in_a_message_cookie(client):
    """The checker itself can fail: a secret in a message (compressed, as this repetitive one
    is) is still found in the cookie."""
    storage = CookieStorage(RequestFactory().get("/"))
    storage.add(messages.WARNING, "New client secret: s3cr3t-value-" + "x" * 40)
    response = HttpResponse()
    storage.update(response)

    with pytest.raises(AssertionError):
        assert_no_cookie_holds([response], "s3cr3t-value-" + "x" * 40)


def test_another_users_secret_page_shows_nothing(client):
    environment = EnvironmentFactory()
    client.force_login(UserFactory(is_superuser=True))
    responses = walk(
        client,
        reverse("admin:accounts_environment_changelist"),
        {"action": "rotate_client_secret", "_selected_action": [environment.pk]},
    )
    url = responses[-2]["Location"]
    client.logout()
    client.force_login(UserFactory(is_superuser=True))

    # The token lives in the first user's session only.
    response = client.get(url)

    assert response.status_code == 410
    assert not shown_secrets(response)
