"""A burst of sandbox bounces through the real pipeline: sends through the API, the
sandbox's callbacks through the receivers (a live server), events counted as they are
recorded; one evaluation a minute. Exactly one alert email (aiosmtpd) and one Slack-shaped
POST (a local HTTP server) when it fires, nothing more while it stays firing, and one of
each when it resolves after the rate falls."""

import email
import email.policy
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import override_settings
from django.utils import timezone

from alerts.evaluation import alert_rules_evaluate
from alerts.models import Alert, AlertNotice, AlertRule
from alerts.vocabulary import NoticeState, RuleKind
from logs.models import Event
from tests.factories import EnvironmentFactory
from tests.notifications.conftest import SECRET, basic
from tests.notifications.factories import ChannelTemplateFactory, NotificationTypeFactory
from tests.webhooks.providers import WEBHOOK_SETTINGS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


@pytest.fixture
def pipeline(live_server):
    settings = WEBHOOK_SETTINGS | {
        "PUBLIC_BASE_URL": live_server.url,
        "SANDBOX_CALLBACK_DELAY": 0,
        "SEND_PROVIDERS": {"email": "sandbox", "sms": "sandbox", "call": "sandbox"},
    }
    with override_settings(**settings):
        yield live_server


def _send(client, environment, recipients: list[str]) -> None:
    for n, address in enumerate(recipients):
        response = client.post(
            f"/{environment.client_id}/sender",
            data=json.dumps({"notificationId": "order_tracking",
                             "user": {"id": f"usr_{n}", "email": address},
                             "mergeTags": {"order_id": f"A-{n}", "first_name": "Al"}}),
            content_type="application/json",
            headers={"authorization": basic(environment.client_id, SECRET)},
        )  # fmt: skip
        assert response.status_code == 200, response.content


def test_a_burst_of_bounces_fires_one_email_and_one_slack_post_then_resolves_once(
    client, pipeline, smtp, slack
):
    environment = EnvironmentFactory(client_secret=SECRET)
    order_tracking = NotificationTypeFactory(environment=environment, key="order_tracking")
    ChannelTemplateFactory(notification_type=order_tracking, channel="email")
    AlertRule.objects.create(
        environment=environment,
        name="Email bounces",
        kind=RuleKind.FAILURE_RATE,
        notification_type="order_tracking",
        channel="email",
        window_minutes=10,
        threshold_percent=50,
        min_notifications=5,
        email_recipients="oncall@example.com",
        webhook_url=slack.url,
    )
    start = timezone.now()

    _send(client, environment, [f"bounce@shop{n}.example.com" for n in range(6)])
    assert Event.objects.filter(environment=environment, sub_kind="bounce").count() == 6
    assert alert_rules_evaluate(now=start)["fired"] == 1
    for minute in (1, 2, 3):  # still above the threshold: firing, nothing repeated
        assert alert_rules_evaluate(now=start + timedelta(minutes=minute))["firing"] == 1

    [fired_email] = smtp.messages
    message = email.message_from_bytes(fired_email.content, policy=email.policy.default)
    assert fired_email.rcpt_tos == ["oncall@example.com"]
    assert message["Subject"].startswith("[FIRING] Email bounces")
    assert "100.0% over the last 10 min (6 failed of 6" in message.get_content()
    [fired_post] = slack.posts
    assert set(fired_post) == {"text", "blocks"} and "[FIRING] Email bounces" in fired_post["text"]
    link = next(w for w in fired_post["text"].split() if w.startswith(pipeline.url))
    query = parse_qs(urlsplit(link).query)
    assert urlsplit(link).path == "/admin/logs/notification/"
    assert query["environment"] == [str(environment.id)] and query["event"] == ["failed"]
    assert query["type"] == ["order_tracking"] and query["channel"] == ["email"]

    # The rate falls: 14 delivered against the 6 bounces is 30%. Hysteresis: the first clear
    # evaluation keeps it firing, the second resolves it.
    _send(client, environment, [f"alice{n}@example.com" for n in range(14)])
    assert alert_rules_evaluate(now=start + timedelta(minutes=4))["clearing"] == 1
    assert len(smtp.messages) == 1 and len(slack.posts) == 1
    assert alert_rules_evaluate(now=start + timedelta(minutes=5))["resolved"] == 1
    assert alert_rules_evaluate(now=start + timedelta(minutes=6))["ok"] == 1

    assert len(smtp.messages) == 2 and len(slack.posts) == 2
    resolved = email.message_from_bytes(smtp.messages[1].content, policy=email.policy.default)
    assert resolved["Subject"].startswith("[RESOLVED] Email bounces")
    assert "[RESOLVED] Email bounces" in slack.posts[1]["text"]
    alert = Alert.objects.get()
    assert alert.resolved_at == start + timedelta(minutes=5) and alert.fired_value == 100.0
    assert set(AlertNotice.objects.values_list("state", flat=True)) == {NoticeState.SENT}
