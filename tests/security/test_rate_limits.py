"""Issue 16, item 7, as a hostile tenant tries it: hammer the send API and the user-hash
endpoints past their limits (real HTTP through Django's test client, counted in the real
Redis), and flood the callback receivers with forged callbacks, which must cost no database
write."""

import base64
import hashlib
import json
import threading

import pytest
import redis
from django.core.cache import caches
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from logs.models import Notification
from tests.factories import ApiKeyFactory, EnvironmentFactory
from tests.notifications.factories import ChannelTemplateFactory, NotificationTypeFactory
from tests.webhooks.conftest import WEBHOOK_SETTINGS
from tests.webhooks.providers import TwilioSms

pytestmark = [pytest.mark.django_db, pytest.mark.redis]
SECRET = "hostile-tenant-secret-0123456789"
METRICS_TOKEN = "scrape-me-0123456789"


def basic(*parts: str) -> str:
    return "Basic " + base64.b64encode(":".join(parts).encode()).decode()


def user_hash(secret: str, user_id: str) -> str:
    return base64.b64encode(hashlib.sha256((secret + user_id).encode()).digest()).decode()


@pytest.fixture(autouse=True)
def _real_redis(redis_url, settings):
    """Every count lives in the Redis of REDIS_URL; each test starts from an empty one."""
    settings.REDIS_URL = redis_url
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def environment():
    environment = EnvironmentFactory(client_secret=SECRET)
    NotificationTypeFactory(environment=environment, key="order_tracking")
    ChannelTemplateFactory(
        notification_type=environment.notification_types.get(),
        channel="email",
        subject="Order {{ order_id }}",
        html="<p>{{ order_id }}</p>",
        text="{{ order_id }}",
    )
    return environment


SEND = {"notificationId": "order_tracking", "user": {"id": "u1", "email": "u1@example.com"},
        "mergeTags": {"order_id": "A-1"}}  # fmt: skip


def _send(client, url: str, authorization: str):
    return client.post(
        url, data=json.dumps(SEND), content_type="application/json",
        headers={"authorization": authorization},
    )  # fmt: skip


def _assert_throttled(response, *, setting: str, window: int = 60) -> None:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    assert 1 <= int(response["Retry-After"]) <= window
    message = response.json()["message"]
    assert "throttled" in message.lower() and setting in message


@pytest.mark.parametrize("path", ["/{client_id}/sender", "/api/v1/notifications"])
def test_hammering_a_send_endpoint_past_the_limit_gets_429_and_writes_nothing(
    client, settings, environment, path
):
    settings.SEND_API_THROTTLE_RATE = "5/minute"
    url = path.format(client_id=environment.client_id)
    secret = basic(environment.client_id, SECRET)

    answers = [_send(client, url, secret).status_code for _ in range(8)]

    assert answers[:5] in ([200] * 5, [201] * 5)
    assert answers[5:] == [429, 429, 429]
    _assert_throttled(_send(client, url, secret), setting="SEND_API_THROTTLE_RATE")
    assert Notification.objects.filter(environment=environment).count() == 5
    # Another credential has its own allowance; the tenant's other API key is not blocked.
    key = ApiKeyFactory(environment=environment, scopes=["send"])
    assert _send(client, url, f"Bearer {key.plain}").status_code in (200, 201)


def test_the_send_count_is_an_atomic_counter_in_redis(client, settings, environment, redis_url):
    settings.SEND_API_THROTTLE_RATE = "100/minute"
    _send(client, f"/{environment.client_id}/sender", basic(environment.client_id, SECRET))

    keys = redis.Redis.from_url(redis_url).keys(f"nlc:throttle:send:env:{environment.pk}:*")
    assert len(keys) == 1
    store = redis.Redis.from_url(redis_url)
    assert store.type(keys[0]) == b"string" and store.get(keys[0]) == b"1"  # INCR, no list
    assert 0 < store.ttl(keys[0]) <= 61


def test_concurrent_hits_never_let_more_than_the_rate_through(redis_url, settings):
    # Eight threads race for one credential's window: a read-modify-write limiter lets
    # extra requests through; an atomic INCR lets exactly the rate through.
    from config.throttling import Rate, window_hit

    rate, threads, per_thread = Rate(count=50, seconds=3600), 8, 25
    allowed = []
    start = threading.Barrier(threads)

    def hammer():
        start.wait()
        mine = 0
        for _ in range(per_thread):
            if window_hit(scope="race", ident="key:1", rate=rate, now=7200.5) is None:
                mine += 1
        allowed.append(mine)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(allowed) == rate.count


def test_the_other_send_scope_endpoints_share_the_credentials_allowance(
    client, settings, environment
):
    settings.SEND_API_THROTTLE_RATE = "3/minute"
    secret = basic(environment.client_id, SECRET)
    for _ in range(3):
        assert _send(client, f"/{environment.client_id}/sender", secret).status_code == 200
    response = client.post(
        f"/{environment.client_id}/user_preferences/u1",
        data=json.dumps([{"notificationId": "order_tracking", "channel": "EMAIL",
                          "delivery": "off"}]),
        content_type="application/json",
        headers={"authorization": secret},
    )  # fmt: skip
    _assert_throttled(response, setting="SEND_API_THROTTLE_RATE")


def test_hammering_the_in_app_feed_with_a_user_hash_gets_429_per_user(
    client, settings, environment
):
    settings.USER_API_THROTTLE_RATE = "4/minute"
    cid = environment.client_id

    def feed(user_id: str):
        return client.get(
            f"/{cid}/users/{user_id}/notifications/INAPP_WEB",
            headers={"authorization": basic(cid, user_id, user_hash(SECRET, user_id))},
        )

    assert [feed("mallory").status_code for _ in range(4)] == [200] * 4
    _assert_throttled(feed("mallory"), setting="USER_API_THROTTLE_RATE")
    identify = client.post(
        f"/{cid}/users/mallory", data=json.dumps({"email": "m@example.com"}),
        content_type="application/json",
        headers={"authorization": basic(cid, "mallory", user_hash(SECRET, "mallory"))},
    )  # fmt: skip
    _assert_throttled(identify, setting="USER_API_THROTTLE_RATE")
    # Another end user of the same environment is not locked out by mallory.
    assert feed("alice").status_code == 200


def test_the_logs_api_counts_in_the_same_atomic_counter(client, settings, environment, redis_url):
    settings.LOGS_API_THROTTLE_RATE = "2/minute"
    secret = basic(environment.client_id, SECRET)
    assert [
        client.get("/api/v1/logs", headers={"authorization": secret}).status_code for _ in range(2)
    ] == [200, 200]
    _assert_throttled(
        client.get("/api/v1/logs", headers={"authorization": secret}),
        setting="LOGS_API_THROTTLE_RATE",
    )
    store = redis.Redis.from_url(redis_url)
    [key] = store.keys(f"nlc:throttle:logs:env:{environment.pk}:*")
    assert store.get(key) == b"3"


@override_settings(**WEBHOOK_SETTINGS, METRICS_TOKEN=METRICS_TOKEN)
def test_a_flood_of_forged_callbacks_writes_no_database_row(client):
    sms = TwilioSms()
    forged = [
        sms.forge(sms.request(sms.new_message_id(), "delivered", sms_at())) for _ in range(20)
    ]

    with CaptureQueriesContext(connection) as queries:
        answers = [client.post(**request).status_code for request in forged]

    assert answers == [403] * 20
    writes = [
        q["sql"] for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]  # fmt: skip
    assert writes == []
    # Still counted for the operator: /metrics reads the Redis counter.
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    line = next(
        line for line in scraped.content.decode().splitlines()
        if line.startswith("notificationlog_callbacks_refused_total{")
        and 'provider="twilio_sms"' in line and 'status="403"' in line
    )  # fmt: skip
    assert float(line.rsplit(" ", 1)[1]) == 20


def sms_at():
    from django.utils import timezone

    return timezone.now()
