"""The management commands that hand out credentials and set up the demo."""

import base64
import re
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from accounts.models import Account, ApiKey, Environment, Membership
from tests.accounts.test_crypto import encryption_keys
from tests.factories import EnvironmentFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def get_environment(client, authorization: str):
    return client.get("/api/v1/environment", headers={"authorization": authorization})


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in output:\n{text}"
    return match.group(1)


# create_environment


def test_create_environment_prints_credentials_once_and_they_authenticate(client):
    out = run("create_environment", "--account", "Acme", "--name", "production")

    client_id = found(r"client id:\s+(\S+)", out)
    secret = found(r"client secret:\s+(\S+)", out)
    assert out.count(secret) == 1
    assert "not shown again" in out
    response = get_environment(client, basic(client_id, secret))
    assert response.status_code == 200
    assert response.json()["account"] == "Acme"
    assert response.json()["environment"] == "production"
    assert response.json()["scopes"] == ["manage", "read", "send"]


def test_create_environment_stores_the_secret_encrypted():
    out = run("create_environment", "--account", "Acme", "--name", "production")

    secret = found(r"client secret:\s+(\S+)", out)
    environment = Environment.objects.get(account__name="Acme", name="production")
    assert secret not in environment.client_secret_encrypted
    assert environment.client_secret() == secret


def test_create_environment_sets_the_plan_of_a_new_account():
    run(
        "create_environment",
        "--account",
        "Acme",
        "--name",
        "production",
        "--plan-monthly-limit",
        "10000",
    )

    assert Account.objects.get(name="Acme").plan_monthly_limit == 10000


def test_create_environment_adds_to_an_existing_account():
    run("create_environment", "--account", "Acme", "--name", "production")
    run("create_environment", "--account", "Acme", "--name", "staging")

    assert Account.objects.filter(name="Acme").count() == 1
    assert set(Environment.objects.filter(account__name="Acme").values_list("name", flat=True)) == {
        "production",
        "staging",
    }


def test_creating_the_same_environment_twice_is_refused():
    run("create_environment", "--account", "Acme", "--name", "production")

    with pytest.raises(CommandError) as excinfo:
        run("create_environment", "--account", "Acme", "--name", "production")

    assert "already has an environment named 'production'" in str(excinfo.value)
    assert Environment.objects.filter(account__name="Acme").count() == 1


# create_api_key


def test_create_api_key_prints_a_key_that_authenticates_with_its_scope(client):
    environment = EnvironmentFactory()

    out = run("create_api_key", "--client-id", environment.client_id, "--scope", "read")

    plain = out.splitlines()[1]
    assert re.fullmatch(r"nlk_[0-9a-f]{12}_\S+", plain)
    assert out.count(plain) == 1
    response = get_environment(client, f"Bearer {plain}")
    assert response.status_code == 200
    assert response.json()["clientId"] == environment.client_id
    assert response.json()["scopes"] == ["read"]
    api_key = ApiKey.objects.get(environment=environment)
    assert api_key.scopes == ["read"]
    assert response.json()["apiKey"] == api_key.prefix
    assert plain not in api_key.secret_hash


def test_create_api_key_with_several_scopes_grants_them_all():
    environment = EnvironmentFactory()

    run(
        "create_api_key",
        "--client-id",
        environment.client_id,
        "--scope",
        "send",
        "--scope",
        "read",
        "--name",
        "ci",
    )

    api_key = ApiKey.objects.get(environment=environment)
    assert api_key.scopes == ["read", "send"]
    assert api_key.name == "ci"


def test_create_api_key_for_unknown_client_id_says_where_to_find_one():
    EnvironmentFactory()

    with pytest.raises(CommandError) as excinfo:
        run("create_api_key", "--client-id", "nosuchclient", "--scope", "read")

    message = str(excinfo.value)
    assert "No environment has client id 'nosuchclient'" in message
    assert "create_environment" in message
    assert not ApiKey.objects.exists()


def test_create_api_key_with_unknown_scope_is_refused():
    environment = EnvironmentFactory()

    with pytest.raises(CommandError, match="invalid choice: 'admin'"):
        run("create_api_key", "--client-id", environment.client_id, "--scope", "admin")

    assert not ApiKey.objects.exists()


# bootstrap_demo


def test_bootstrap_demo_creates_account_environment_admin_and_support_user(client):
    out = run("bootstrap_demo")

    account = Account.objects.get(name="Demo")
    environment = Environment.objects.get(account=account, name="production")
    client_id = found(r"client id (\S+), client secret", out)
    secret = found(r"client secret (\S+)", out)
    assert client_id == environment.client_id
    assert get_environment(client, basic(client_id, secret)).status_code == 200

    admin_password = found(r"Superuser created: admin / (\S+)", out)
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password(admin_password)

    support_password = found(r"Support user created: support / (\S+)", out)
    support = User.objects.get(username="support")
    assert support.check_password(support_password)
    assert support.is_staff
    assert not support.is_superuser
    assert list(support.groups.values_list("name", flat=True)) == ["Support"]
    membership = Membership.objects.get(user=support)
    assert membership.account == account
    assert membership.role == Membership.Role.SUPPORT


def test_bootstrap_demo_users_can_sign_in_to_the_console(client):
    out = run("bootstrap_demo")

    for username in ("admin", "support"):
        password = found(rf"{username} / (\S+)", out)
        # Through the login form, as a person signs in (axes checks each login's request).
        signed_in = client.post("/admin/login/", {"username": username, "password": password})
        assert signed_in.status_code == 302
        assert client.get("/admin/").status_code == 200
        client.logout()


def test_bootstrap_demo_support_user_sees_no_credentials():
    run("bootstrap_demo")

    support = User.objects.get(username="support")
    assert not support.has_perm("accounts.view_environment")
    assert not support.has_perm("accounts.view_apikey")
    assert not support.has_perm("accounts.change_environment")


def test_bootstrap_demo_second_run_prints_nothing_and_creates_nothing():
    first = run("bootstrap_demo")
    admin_password = found(r"Superuser created: admin / (\S+)", first)
    counts = [model.objects.count() for model in (Account, Environment, User, Membership, Group)]
    client_secret = Environment.objects.get(account__name="Demo").client_secret_encrypted

    second = run("bootstrap_demo")

    assert second == ""
    assert [
        model.objects.count() for model in (Account, Environment, User, Membership, Group)
    ] == counts
    assert Environment.objects.get(account__name="Demo").client_secret_encrypted == client_secret
    assert User.objects.get(username="admin").check_password(admin_password)


def test_bootstrap_demo_is_refused_in_production():
    with override_settings(PRODUCTION=True), pytest.raises(CommandError) as excinfo:
        run("bootstrap_demo")

    assert "refused in production" in str(excinfo.value)
    assert not Account.objects.filter(name="Demo").exists()
    assert not User.objects.exists()


# rotate_secrets: every client secret re-encrypted under the newest key


def stored_token(environment) -> str:
    return Environment.objects.values_list("client_secret_encrypted", flat=True).get(
        pk=environment.pk
    )


def test_rotate_secrets_moves_every_secret_to_the_newest_key_so_old_keys_can_go():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with encryption_keys(old):
        first = EnvironmentFactory(client_secret="first-secret-before-rotation")
        second = EnvironmentFactory(client_secret="second-secret-before-rotation")
    with encryption_keys(new):
        current = EnvironmentFactory(client_secret="already-under-the-new-key")
    current_token = stored_token(current)

    with encryption_keys(new, old):
        output = run("rotate_secrets")
        again = run("rotate_secrets")

    assert "Re-encrypted 2 client secret(s) under the newest key; 1 already were" in output
    assert "Re-encrypted 0 client secret(s) under the newest key; 3 already were" in again
    assert stored_token(current) == current_token  # untouched, not re-encrypted again
    for text in (output, again):
        assert "secret-before-rotation" not in text and "already-under" not in text
    # The old key is retired: the new one alone reads every secret.
    with encryption_keys(new):
        assert Environment.objects.get(pk=first.pk).client_secret() == (
            "first-secret-before-rotation"
        )
        assert Environment.objects.get(pk=second.pk).client_secret() == (
            "second-secret-before-rotation"
        )


def test_rotate_secrets_changes_nothing_when_a_secret_is_unreadable():
    lost, old, new = (Fernet.generate_key().decode() for _ in range(3))
    with encryption_keys(old):
        readable = EnvironmentFactory()
    with encryption_keys(lost):
        unreadable = EnvironmentFactory()
    before = stored_token(readable)

    with encryption_keys(new, old), pytest.raises(CommandError) as excinfo:
        run("rotate_secrets")

    assert f"id {unreadable.pk}" in str(excinfo.value)
    assert "Nothing was changed" in str(excinfo.value)
    assert stored_token(readable) == before
