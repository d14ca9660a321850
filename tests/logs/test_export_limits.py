"""Concurrent exports per credential are capped (EXPORT_MAX_CONCURRENT): one more is a 429
with Retry-After and a message saying what to do; a finished or abandoned export gives its
slot back, and a slot whose process died expires."""

import time

import pytest

from tests.console.conftest import console_user
from tests.console.test_pages import EXPORT, sms
from tests.logs.api.conftest import client_for, make_log

pytestmark = pytest.mark.django_db

API_EXPORT = "/api/v1/logs/export?format=csv"


@pytest.fixture(autouse=True)
def _one_export_at_a_time(settings):
    settings.EXPORT_MAX_CONCURRENT = 1
    settings.LOGS_API_THROTTLE_RATE = "100000/minute"


@pytest.fixture
def environment():
    from tests.factories import EnvironmentFactory
    from tests.logs.api.conftest import SECRET

    environment = EnvironmentFactory(client_secret=SECRET)
    for n in range(3):
        make_log(environment, minutes=n)
    return environment


def test_a_second_api_export_of_one_credential_waits_for_the_first(environment):
    api = client_for(environment)
    running = api.get(API_EXPORT)
    assert running.status_code == 200
    stream = iter(running.streaming_content)
    next(stream)  # the export has started and is being read
    refused = api.get(API_EXPORT)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "10"
    message = refused.json()["message"]
    assert "already runs 1 export at once (EXPORT_MAX_CONCURRENT)" in message
    assert "wait for one to finish" in message
    list(stream)  # the first export ends: its slot is free again
    again = api.get(API_EXPORT)
    assert again.status_code == 200
    assert len(b"".join(again.streaming_content).splitlines()) == 4  # header and 3 rows


def test_an_abandoned_export_gives_its_slot_back_when_closed(environment):
    api = client_for(environment)
    running = api.get(API_EXPORT)
    next(iter(running.streaming_content))
    assert api.get(API_EXPORT).status_code == 429
    running.close()  # the client went away: the server closes the response
    assert api.get(API_EXPORT).status_code == 200


def test_a_dead_exports_slot_expires(environment, settings):
    settings.EXPORT_SLOT_TTL_SECONDS = 1
    api = client_for(environment)
    running = api.get(API_EXPORT)
    next(iter(running.streaming_content))  # never finished, never closed: a killed process
    assert api.get(API_EXPORT).status_code == 429
    time.sleep(1.2)
    assert api.get(API_EXPORT).status_code == 200


def test_another_credential_is_not_held_back(environment):
    from tests.factories import ApiKeyFactory
    from tests.logs.api.conftest import bearer_client

    running = client_for(environment).get(API_EXPORT)
    next(iter(running.streaming_content))
    key = ApiKeyFactory(environment=environment, scopes=["read"])
    assert bearer_client(key.plain).get(API_EXPORT).status_code == 200
    running.close()


def test_a_console_users_second_export_is_a_429_saying_so(client, environment):
    mine = environment
    sms(mine)
    client.force_login(console_user(mine))
    running = client.get(EXPORT, {"environment": mine.id})
    assert running.status_code == 200
    next(iter(running.streaming_content))
    refused = client.get(EXPORT, {"environment": mine.id})
    assert refused.status_code == 429
    assert refused["Retry-After"] == "10"
    assert refused.content.decode().startswith("You already run 1 export at once")
    # Closed as the server closes it. Left to the garbage collector, the export's end (its
    # row count saved on the access record) would run whenever it collects, inside whatever
    # query this thread's connection is running then: a later test's, which then waits on
    # the connection it is itself holding.
    running.close()
