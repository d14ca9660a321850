"""The console: owners and admins manage alert rules, support and viewers read them; every
bad value is a form error naming its field; alerts are listed with the link to what caused
them; another tenant's rule or alert is a 404."""

import html
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from alerts.evaluation import alert_rules_evaluate
from alerts.models import Alert, AlertRule
from tests.alerts.helpers import record, rule
from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory
from tests.notifications.factories import NotificationTypeFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

ADD = "admin:alerts_alertrule_add"
VALID = {
    "name": "Bounces",
    "kind": "failure_rate",
    "notification_type": "order_tracking",
    "channel": "email",
    "event": "",
    "window_minutes": "10",
    "threshold_percent": "20",
    "min_notifications": "50",
    "max_events": "",
    "email_recipients": "oncall@example.com, lead@example.com",
    "webhook_url": "https://hooks.slack.com/services/T0/B0/X",
    "enabled": "on",
}


def member(environment, role: str):
    """A staff user with every permission on alert rules and alerts (so only the role says
    what they may do) and `role` in the environment's account."""
    user = UserFactory()
    MembershipFactory(user=user, account=environment.account, role=role)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="alerts"))
    return user


@pytest.fixture
def environment():
    environment = EnvironmentFactory()
    NotificationTypeFactory(environment=environment, key="order_tracking")
    return environment


@pytest.fixture
def admin_client(client, environment):
    client.force_login(member(environment, Membership.Role.ADMIN))
    return client


def errors_of(response) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {field: [html.unescape(str(e)) for e in errs] for field, errs in form.errors.items()}


def test_an_admin_adds_a_rule(admin_client, environment):
    response = admin_client.post(reverse(ADD), VALID | {"environment": environment.id})
    assert response.status_code == 302, errors_of(response)
    created = AlertRule.objects.get()
    assert created.recipients() == ["oncall@example.com", "lead@example.com"]
    assert (created.environment, created.threshold_percent) == (environment, 20)


BAD = [
    ({"notification_type": "order_trackin"}, "notification_type",
     "no notification type 'order_trackin'"),
    ({"channel": "fax"}, "channel", "Select a valid choice"),
    ({"kind": "event_count", "event": "failed:busy", "max_events": "5"}, "event",
     "'busy' is not a sub-kind of 'failed'"),
    ({"kind": "event_count", "event": "exploded", "max_events": "5"}, "event",
     "Unknown event kind 'exploded'"),
    ({"kind": "event_count", "event": "failed:undelivered", "max_events": "5"}, "event",
     "never happens on the email channel"),
    ({"kind": "event_count", "event": "failed:bounce"}, "max_events", "needs a number"),
    ({"threshold_percent": "100"}, "threshold_percent", "from 0 to 99.99"),
    ({"threshold_percent": "-1"}, "threshold_percent", "from 0 to 99.99"),
    ({"threshold_percent": ""}, "threshold_percent", "needs a threshold"),
    ({"window_minutes": "0"}, "window_minutes", "from 1 to 1440 minutes"),
    ({"window_minutes": "1441"}, "window_minutes", "from 1 to 1440 minutes"),
    ({"min_notifications": "0"}, "min_notifications", "from 1 to 1,000,000"),
    ({"kind": "delivery_silence", "channel": ""}, "channel", "watches one channel"),
    ({"webhook_url": "http://hooks.slack.com/services/T0/B0/X"}, "webhook_url", "https://"),
    ({"webhook_url": "ftp://127.0.0.1/x"}, "webhook_url", "https://"),
    ({"email_recipients": "oncall@example.com, nobody"}, "email_recipients",
     "'nobody' is not an email address"),
    ({"email_recipients": "", "webhook_url": ""}, "email_recipients", "at least one"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field", "message"), BAD, ids=[b[1] + ":" + str(b[0]) for b in BAD]
)
def test_bad_values_are_form_errors_naming_the_field(
    admin_client, environment, change, field, message
):
    response = admin_client.post(reverse(ADD), VALID | {"environment": environment.id} | change)
    assert response.status_code == 200
    errors = errors_of(response)
    assert message in " ".join(errors.get(field, [])), errors
    assert not AlertRule.objects.exists()


def test_loopback_http_webhooks_only_in_development(admin_client, environment, settings):
    body = VALID | {"environment": environment.id, "webhook_url": "http://127.0.0.1:9000/hook"}
    settings.OUTBOUND_ALLOW_LOOPBACK_HTTP = False
    response = admin_client.post(reverse(ADD), body)
    assert "Use an https:// address" in " ".join(errors_of(response)["webhook_url"])
    settings.OUTBOUND_ALLOW_LOOPBACK_HTTP = True
    assert admin_client.post(reverse(ADD), body).status_code == 302


@pytest.mark.parametrize("role", [Membership.Role.SUPPORT, Membership.Role.VIEWER])
def test_support_and_viewers_read_but_do_not_change(client, environment, role):
    existing = rule(environment)
    client.force_login(member(environment, role))
    change = reverse("admin:alerts_alertrule_change", args=[existing.id])
    assert client.get(reverse("admin:alerts_alertrule_changelist")).status_code == 200
    assert client.get(change).status_code == 200  # the read-only view
    body = VALID | {"environment": environment.id, "name": "Renamed"}
    assert client.post(change, body).status_code == 403
    assert client.post(reverse(ADD), body).status_code == 403
    delete = reverse("admin:alerts_alertrule_delete", args=[existing.id])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    existing.refresh_from_db()
    assert existing.name == "Bounces"


def test_another_tenants_rule_and_alert_are_404(admin_client):
    other = EnvironmentFactory()
    foreign = rule(other, min_notifications=1)
    record(other, ("failed", "email", "bounce"))
    alert_rules_evaluate()
    for url in (
        reverse("admin:alerts_alertrule_change", args=[foreign.id]),
        reverse("admin:alerts_alert_change", args=[Alert.objects.get().id]),
    ):
        assert admin_client.get(url).status_code == 404
    listing = admin_client.get(reverse("admin:alerts_alert_changelist"))
    assert "Bounces" not in listing.content.decode()


def test_an_admin_cannot_move_a_rule_to_an_environment_they_do_not_manage(
    admin_client, environment
):
    other = EnvironmentFactory()
    response = admin_client.post(reverse(ADD), VALID | {"environment": other.id})
    assert "environment" in errors_of(response)


def test_alerts_are_listed_firing_and_resolved_with_the_search_link(
    client, environment, django_assert_max_num_queries
):
    client.force_login(member(environment, Membership.Role.VIEWER))
    for n in range(3):
        rule(environment, name=f"Rule {n}", min_notifications=1)
    record(environment, ("failed", "email", "bounce"))
    alert_rules_evaluate()
    Alert.objects.filter(rule__name="Rule 0").update(resolved_at=timezone.now())
    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:alerts_alert_changelist"))
    text = html.unescape(response.content.decode())
    assert text.count("Firing") >= 2 and "Resolved" in text
    firing = client.get(reverse("admin:alerts_alert_changelist") + "?state=firing")
    assert "Rule 0" not in firing.content.decode()
    link = next(part for part in text.split('"') if part.startswith("/admin/logs/notification/?"))
    query = parse_qs(urlsplit(link).query)
    # From the day the alert's window starts (the day before, in the first minutes of a day).
    [window_start] = set(Alert.objects.values_list("window_start", flat=True))
    assert query == {
        "environment": [str(environment.id)],
        "channel": ["email"],
        "event": ["failed"],
        "date_from": [window_start.date().isoformat()],
        "date_to": [timezone.now().date().isoformat()],
    }


def test_the_link_opens_the_console_search_on_the_notifications_that_caused_it(client, environment):
    user = member(environment, Membership.Role.VIEWER)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="logs"))
    client.force_login(user)
    rule(environment, min_notifications=1, threshold_percent=40)  # 1 of 2 failed: 50%
    bounced = record(environment, ("failed", "email", "bounce"))
    delivered = record(environment, ("delivered", "email", ""))
    alert_rules_evaluate()
    listing = html.unescape(client.get(reverse("admin:alerts_alert_changelist")).content.decode())
    link = next(
        part for part in listing.split('"') if part.startswith("/admin/logs/notification/?")
    )
    search = client.get(link)
    assert search.status_code == 200
    text = search.content.decode()
    assert bounced.user_id in text and delivered.user_id not in text
