"""A tenant gives the install an address to call (a stream subscriber, an alert webhook) that
is inside the install's own network: the metadata service, a private host, loopback in
disguise, or a name that resolves to one of them. The console refuses it with the rule, and
a call to one already stored (saved before, or a name that moved) never leaves the machine;
what the tenant reads of a failure is coarse, never a scanner's report."""

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import reverse

from accounts.crypto import secret_encrypt
from accounts.models import Membership
from alerts.evaluation import alert_rules_evaluate
from alerts.models import AlertNotice, AlertRule
from stream.models import StreamAttempt, Subscription
from stream.services.subscriptions import subscription_create, subscription_secret_generate
from tests.alerts.helpers import record, rule
from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory
from tests.logs.factories import NotificationFactory
from tests.notifications.factories import NotificationTypeFactory
from tests.security.hostile import Refuser, sending_recorded
from tests.stream.receiver import Receiver

pytestmark = [pytest.mark.django_db]
# Addresses Django's URLField already refuses; the install's own rule refuses them too.
ENCODED = ["https://0177.0.0.1/", "https://2130706433/", "https://127.1/"]

INTERNAL = [
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://10.0.0.1/",
    "https://192.168.1.1:8443/hook",
    "https://100.64.0.1/",  # CGNAT
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[fd00::1]/",
    "https://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
    "https://[fe80::1]/",
    "https://224.0.0.1/",
    "https://localhost/hook",  # a name that resolves to loopback
]


@pytest.fixture(autouse=True)
def _production_rule():
    """The rule as production applies it: no loopback exception."""
    with override_settings(OUTBOUND_ALLOW_LOOPBACK_HTTP=False):
        yield


@pytest.fixture
def environment():
    environment = EnvironmentFactory()
    NotificationTypeFactory(environment=environment, key="order_tracking")
    return environment


def owner_client(client, environment, app_label):
    user = UserFactory()
    MembershipFactory(user=user, account=environment.account, role=Membership.Role.OWNER)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label=app_label))
    client.force_login(user)
    return client


def form_errors(response, field):
    assert response.status_code == 200, response.status_code
    return " ".join(response.context["adminform"].form.errors.get(field, []))


@pytest.mark.parametrize("url", INTERNAL)
def test_a_subscription_to_an_internal_address_is_refused_with_the_rule(client, environment, url):
    owner = owner_client(client, environment, "stream")
    response = owner.post(
        reverse("admin:stream_subscription_add"),
        {"environment": environment.pk, "url": url, "kinds": ["failed"],
         "payload_format": "standard", "enabled": "on"},
    )  # fmt: skip
    errors = form_errors(response, "url")
    assert "public internet" in errors, errors
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("url", INTERNAL)
def test_an_alert_webhook_to_an_internal_address_is_refused_with_the_rule(client, environment, url):
    owner = owner_client(client, environment, "alerts")
    response = owner.post(
        reverse("admin:alerts_alertrule_add"),
        {"environment": environment.id, "name": "Bounces", "kind": "failure_rate",
         "notification_type": "order_tracking", "channel": "email", "event": "",
         "window_minutes": "10", "threshold_percent": "20", "min_notifications": "5",
         "max_events": "", "email_recipients": "", "webhook_url": url, "enabled": "on"},
    )  # fmt: skip
    errors = form_errors(response, "webhook_url")
    assert "public internet" in errors, errors
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize("url", ENCODED)
def test_encoded_loopback_is_refused_by_the_rule_itself(environment, url):
    with pytest.raises(ValidationError, match="public internet"):
        subscription_create(environment=environment, url=url, kinds=["failed"])
    assert not Subscription.objects.exists()


def test_plain_http_is_refused_with_the_rule(client, environment):
    owner = owner_client(client, environment, "stream")
    response = owner.post(
        reverse("admin:stream_subscription_add"),
        {"environment": environment.pk, "url": "http://127.0.0.1:6379/", "kinds": ["failed"],
         "payload_format": "standard", "enabled": "on"},
    )  # fmt: skip
    assert "https://" in form_errors(response, "url")
    assert not Subscription.objects.exists()


def _stored_subscription(environment, url):
    """A subscription already in the table (saved before the rule, or its name has since
    moved to an internal address): only the call's own check stands in the way."""
    return Subscription.objects.create(
        environment=environment,
        url=url,
        kinds=["sending"],
        secret_encrypted=secret_encrypt(subscription_secret_generate()),
    )


@pytest.mark.django_db(transaction=True)
def test_a_stored_subscription_to_loopback_is_never_called(environment, celery_eager):
    with Receiver() as internal:  # an internal service on this machine
        subscription = _stored_subscription(environment, internal.url)
        sending_recorded(NotificationFactory(environment=environment))
        assert internal.requests == []
    attempt = StreamAttempt.objects.get(message__subscription=subscription)
    assert (attempt.status_code, attempt.error) == (None, "address not allowed")


@pytest.mark.django_db(transaction=True)
def test_what_a_tenant_reads_of_a_failure_is_coarse(environment, celery_eager):
    """With loopback allowed (development), a closed port: the attempt says "connection
    refused", not the exception's text with the address and errno."""
    with override_settings(OUTBOUND_ALLOW_LOOPBACK_HTTP=True):
        subscription = _stored_subscription(environment, Refuser().url)
        sending_recorded(NotificationFactory(environment=environment))
    attempt = StreamAttempt.objects.get(message__subscription=subscription)
    assert (attempt.status_code, attempt.error) == (None, "connection refused")


@pytest.mark.django_db(transaction=True)
def test_an_alert_webhook_stored_to_an_internal_address_is_never_called(
    environment, slack, celery_eager
):
    rule(environment, min_notifications=1, email_recipients="", webhook_url=slack.url)
    record(environment, ("failed", "email", "bounce"))
    alert_rules_evaluate()
    notice = AlertNotice.objects.get()
    assert slack.posts == []
    assert notice.last_error == "webhook unreachable: address not allowed"
