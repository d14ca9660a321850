"""Secrets at rest: client secrets encrypted with rotatable keys, API keys only hashed."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import override_settings

from accounts.crypto import _fernet, secret_decrypt, secret_encrypt
from accounts.models import Environment
from accounts.services import environment_create
from tests.factories import AccountFactory, ApiKeyFactory, EnvironmentFactory


@contextmanager
def encryption_keys(*keys: str) -> Iterator[None]:
    """SECRETS_ENCRYPTION_KEYS set to `keys` (newest first). The MultiFernet is cached per
    process, so the cache is cleared on the way in and on the way out."""
    _fernet.cache_clear()
    try:
        with override_settings(SECRETS_ENCRYPTION_KEYS=list(keys)):
            yield
            _fernet.cache_clear()
    finally:
        _fernet.cache_clear()


def new_key() -> str:
    return Fernet.generate_key().decode()


def stored_row(table: str, pk: int) -> str:
    """Every column of a row as PostgreSQL stores it, as text."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_secret_round_trips_through_encryption():
    token = secret_encrypt("a-client-secret")

    assert "a-client-secret" not in token
    assert secret_decrypt(token) == "a-client-secret"


@pytest.mark.django_db
def test_environment_client_secret_is_stored_encrypted_not_plain():
    created = environment_create(account=AccountFactory(), name="production")

    row = stored_row("accounts_environment", created.obj.pk)

    assert created.secret not in row
    assert Environment.objects.get(pk=created.obj.pk).client_secret() == created.secret


@pytest.mark.django_db
def test_api_key_is_stored_only_as_a_hash():
    api_key = ApiKeyFactory()

    row = stored_row("accounts_apikey", api_key.pk)

    assert api_key.plain not in row
    # Only the prefix, which the console shows, is stored in clear.
    assert api_key.prefix in row
    assert api_key.plain.startswith(api_key.prefix + "_")


def test_secret_encrypted_with_an_old_key_decrypts_after_a_new_key_is_put_first():
    old, new = new_key(), new_key()
    with encryption_keys(old):
        old_token = secret_encrypt("encrypted-before-rotation")

    with encryption_keys(new, old):
        assert secret_decrypt(old_token) == "encrypted-before-rotation"
        new_token = secret_encrypt("encrypted-after-rotation")

    # The first key is the one that encrypts: the new token needs the new key...
    with encryption_keys(new):
        assert secret_decrypt(new_token) == "encrypted-after-rotation"
    # ...and the old key alone cannot read it.
    with encryption_keys(old), pytest.raises(ValueError):
        secret_decrypt(new_token)


@pytest.mark.django_db
def test_environment_created_before_rotation_keeps_its_client_secret():
    old, new = new_key(), new_key()
    with encryption_keys(old):
        environment = EnvironmentFactory(client_secret="secret-from-before")

    with encryption_keys(new, old):
        assert Environment.objects.get(pk=environment.pk).client_secret() == "secret-from-before"


def test_wrong_key_gives_value_error_naming_the_setting():
    with encryption_keys(new_key()):
        token = secret_encrypt("unreadable-later")

    with encryption_keys(new_key()), pytest.raises(ValueError) as excinfo:
        secret_decrypt(token)

    assert "SECRETS_ENCRYPTION_KEY" in str(excinfo.value)
    assert "unreadable-later" not in str(excinfo.value)
