"""GET /metrics: Prometheus's own parser reads it, and its numbers are the log's."""

from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from logs.models import Delivery, Notification
from notifications.models import Outbox
from tests.factories import EnvironmentFactory
from tests.insights.helpers import notification_with
from tests.webhooks.providers import TwilioSms, sent_delivery
from webhooks.models import InboxEntry, InboxState

pytestmark = pytest.mark.django_db
TOKEN = "scrape-me-0123456789"


def _scrape(client) -> dict[str, list]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    families = text_string_to_metric_families(response.content.decode())
    return {family.name: family.samples for family in families}


def _values(samples, name: str, **labels) -> float:
    return sum(
        sample.value
        for sample in samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@override_settings(METRICS_TOKEN="")
def test_metrics_are_off_until_a_token_is_set(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert "set METRICS_TOKEN" in response.content.decode()


@override_settings(METRICS_TOKEN=TOKEN)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "]
)
def test_a_wrong_or_missing_token_gets_401(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "notificationlog" not in response.content.decode()


@override_settings(METRICS_TOKEN=TOKEN)
@pytest.mark.usefixtures("webhook_settings", "celery_eager")
def test_metrics_match_the_log(client, django_capture_on_commit_callbacks):
    environment, other = EnvironmentFactory(), EnvironmentFactory()
    notification_with(environment, [("sent", "email"), ("failed", "email", "bounce")])
    notification_with(environment, [("sent", "email"), ("delivered", "email")])
    notification_with(environment, [("ignored", "sms", "user_preference")])
    notification_with(other, [("sent", "call")])
    sms = TwilioSms()
    delivered_ids = [sms.new_message_id() for _ in range(3)]
    for message_id in delivered_ids:
        sent_delivery(environment=environment, channel="sms", message_id=message_id)
        with django_capture_on_commit_callbacks(execute=True):
            assert sms.post(client, message_id, "delivered").status_code == 200
    # One forged callback (refused, never stored) and one stored but not processed yet.
    assert (
        client.post(**sms.forge(sms.request(delivered_ids[0], "sent", timezone.now()))).status_code
        == 403
    )
    assert sms.post(client, sms.new_message_id(), "sent").status_code == 200
    Outbox.objects.create(
        notification_id=Notification.objects.first().id,
        notification_created_at=timezone.now(),
        environment=environment,
        due_at=timezone.now() - timedelta(seconds=30),
        next_sweep_at=timezone.now(),
    )

    metrics = _scrape(client)

    for env in (environment, other):
        by_status = Counter(
            Notification.objects.filter(environment=env).values_list("status", flat=True)
        )
        for status, count in by_status.items():
            assert (
                _values(
                    metrics["notificationlog_notifications"],
                    "notificationlog_notifications",
                    environment=env.client_id,
                    status=status,
                )
                == count
            )
        assert _values(
            metrics["notificationlog_notifications"],
            "notificationlog_notifications",
            environment=env.client_id,
        ) == sum(by_status.values())
    deliveries = Counter(
        Delivery.objects.filter(environment=environment).values_list(
            "channel", "state", "state_detail"
        )
    )
    assert deliveries[("sms", "delivered", "")] == 3
    for (channel, state, sub_kind), count in deliveries.items():
        assert (
            _values(
                metrics["notificationlog_deliveries"],
                "notificationlog_deliveries",
                environment=environment.client_id,
                channel=channel,
                state=state,
                sub_kind=sub_kind,
            )
            == count
        )
    assert _values(
        metrics["notificationlog_deliveries"],
        "notificationlog_deliveries",
        environment=environment.client_id,
    ) == sum(deliveries.values())

    inbox = Counter(InboxEntry.objects.values_list("provider", "state"))
    assert inbox == {("twilio_sms", InboxState.PROCESSED): 3, ("twilio_sms", InboxState.PENDING): 1}
    accepted = metrics["notificationlog_callbacks_accepted"]
    assert (
        _values(
            accepted, "notificationlog_callbacks_accepted", provider="twilio_sms", state="processed"
        )
        == 3
    )
    assert (
        _values(
            accepted, "notificationlog_callbacks_accepted", provider="twilio_sms", state="pending"
        )
        == 1
    )
    refused = metrics["notificationlog_callbacks_refused"]
    assert (
        _values(
            refused, "notificationlog_callbacks_refused_total", provider="twilio_sms", status="403"
        )
        == 1
    )
    assert (
        _values(
            metrics["notificationlog_inbox_backlog"],
            "notificationlog_inbox_backlog",
            provider="twilio_sms",
        )
        == 1
    )
    assert _values(metrics["notificationlog_outbox_backlog"], "notificationlog_outbox_backlog") == 1
    assert (
        29
        <= _values(
            metrics["notificationlog_outbox_oldest_age_seconds"],
            "notificationlog_outbox_oldest_age_seconds",
        )
        < 600
    )
    freshness = metrics["notificationlog_callback_freshness_seconds"]
    assert (
        _values(
            freshness, "notificationlog_callback_freshness_seconds_count", provider="twilio_sms"
        )
        == 3
    )
    assert (
        _values(
            freshness,
            "notificationlog_callback_freshness_seconds_bucket",
            provider="twilio_sms",
            le="+Inf",
        )
        == 3
    )


@override_settings(METRICS_TOKEN=TOKEN)
def test_a_scrape_reads_a_bounded_number_of_queries(client, django_assert_max_num_queries):
    for _ in range(3):
        EnvironmentFactory()
    with django_assert_max_num_queries(8):
        _scrape(client)


LOG_TABLES = ("logs_notification", "logs_delivery", "logs_event")


def _statuses(environment) -> Counter:
    return Counter(
        Notification.objects.filter(environment=environment).values_list("status", flat=True)
    )


def _scraped_statuses(metrics, environment) -> Counter:
    return Counter(
        {
            sample.labels["status"]: sample.value
            for sample in metrics["notificationlog_notifications"]
            if sample.labels["environment"] == environment.client_id
        }
    )


@override_settings(METRICS_TOKEN=TOKEN, METRICS_CACHE_SECONDS=30)
def test_scrapes_within_the_cache_interval_read_no_log_table_and_give_the_logs_counts(client):
    environment = EnvironmentFactory()
    notification_with(environment, [("sent", "email"), ("delivered", "email")])
    notification_with(environment, [("sent", "sms"), ("failed", "sms", "undelivered")])
    notification_with(environment, [("sent", "call")])
    expected = _statuses(environment)
    assert sum(expected.values()) == 3

    first = _scrape(client)
    with CaptureQueriesContext(connection) as queries:
        second = _scrape(client)
        third = _scrape(client)

    log_queries = [q["sql"] for q in queries if any(table in q["sql"] for table in LOG_TABLES)]
    assert not log_queries, log_queries
    for metrics in (first, second, third):
        assert _scraped_statuses(metrics, environment) == expected
        assert (
            _values(
                metrics["notificationlog_deliveries"],
                "notificationlog_deliveries",
                environment=environment.client_id,
                channel="sms",
                state="failed",
                sub_kind="undelivered",
            )
            == 1
        )
    age = second["notificationlog_metrics_window_age_seconds"][0].value
    assert 0 <= age < 30


@override_settings(METRICS_TOKEN=TOKEN, METRICS_CACHE_SECONDS=30)
def test_the_window_is_counted_again_once_older_than_the_cache_interval(client):
    environment = EnvironmentFactory()
    notification_with(environment, [("sent", "email")])
    assert sum(_scraped_statuses(_scrape(client), environment).values()) == 1

    notification_with(environment, [("sent", "email"), ("delivered", "email")])
    # Within the interval the counts are the kept ones, and say how old they are ...
    assert sum(_scraped_statuses(_scrape(client), environment).values()) == 1
    # ... once older, the next scrape counts the log again.
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        metrics = _scrape(client)
    assert _scraped_statuses(metrics, environment) == _statuses(environment)
    assert sum(_scraped_statuses(metrics, environment).values()) == 2
    assert metrics["notificationlog_metrics_window_age_seconds"][0].value == 0


@override_settings(
    METRICS_TOKEN=TOKEN,
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens
        }
    },
)
def test_without_the_cache_every_scrape_counts_the_log(client):
    environment = EnvironmentFactory()
    notification_with(environment, [("sent", "email")])
    assert sum(_scraped_statuses(_scrape(client), environment).values()) == 1

    notification_with(environment, [("sent", "email")])
    assert sum(_scraped_statuses(_scrape(client), environment).values()) == 2
