"""Credentials are read from a per-process cache (config/hotcache.py): a change made in this
process applies at once, one made elsewhere (here: an UPDATE that sends no signal, as another
server process's change looks from this one) within HOT_CACHE_SECONDS, and an unknown
client id is never remembered."""

import pytest

from accounts.crypto import secret_encrypt
from accounts.models import Environment
from accounts.services import api_key_revoke, environment_secret_issue
from config import hotcache
from tests.accounts.test_authentication import ENVIRONMENT_URL, basic
from tests.factories import ApiKeyFactory, EnvironmentFactory

pytestmark = pytest.mark.django_db

SECRET = "cached-secret-0123456789"


def status(client, authorization: str) -> int:
    return client.get(ENVIRONMENT_URL, headers={"authorization": authorization}).status_code


class Clock:
    """The caches' monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


def test_a_secret_changed_by_another_process_stops_working_within_the_cache_time(
    client, settings, monkeypatch
):
    clock = Clock()
    monkeypatch.setattr(hotcache, "time", clock)
    settings.HOT_CACHE_SECONDS = 5
    environment = EnvironmentFactory(client_secret=SECRET)
    old = basic(environment.client_id, SECRET)
    assert status(client, old) == 200  # read at 0 s: held until 5 s

    Environment.objects.filter(pk=environment.pk).update(
        client_secret_encrypted=secret_encrypt("a-new-secret-0123456789")
    )
    clock.now += 4.9
    assert status(client, old) == 200  # this process still holds the environment
    clock.now += 0.2
    assert status(client, old) == 401
    assert status(client, basic(environment.client_id, "a-new-secret-0123456789")) == 200


def test_a_secret_rotated_in_this_process_stops_working_at_once(client):
    environment = EnvironmentFactory(client_secret=SECRET)
    assert status(client, basic(environment.client_id, SECRET)) == 200

    new_secret = environment_secret_issue(environment=environment)
    assert status(client, basic(environment.client_id, SECRET)) == 401
    assert status(client, basic(environment.client_id, new_secret)) == 200


def test_a_key_revoked_in_this_process_is_refused_at_once(client):
    api_key = ApiKeyFactory()
    assert status(client, f"Bearer {api_key.plain}") == 200

    api_key_revoke(api_key=api_key)
    assert status(client, f"Bearer {api_key.plain}") == 401


def test_an_unknown_client_id_is_not_remembered(client):
    assert status(client, basic("env_not_yet", SECRET)) == 401
    EnvironmentFactory(client_id="env_not_yet", client_secret=SECRET)
    assert status(client, basic("env_not_yet", SECRET)) == 200


def test_with_the_cache_off_every_request_reads_the_database(client, settings):
    settings.HOT_CACHE_SECONDS = 0
    environment = EnvironmentFactory(client_secret=SECRET)
    assert status(client, basic(environment.client_id, SECRET)) == 200
    Environment.objects.filter(pk=environment.pk).update(
        client_secret_encrypted=secret_encrypt("a-new-secret-0123456789")
    )
    assert status(client, basic(environment.client_id, SECRET)) == 401
