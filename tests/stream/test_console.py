"""The stream's console pages: subscribing (each bad input an error on its field, the
signing secret shown once on its own page), messages with their attempts, replay, tenant
scoping; purge runs read-only; an account's retention bounded by the install's."""

import re
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from accounts.models import Membership
from logs.models import PurgeRun
from stream.models import StreamAttempt, StreamMessage, Subscription
from stream.services.delivery import message_sign
from stream.services.subscriptions import subscription_create
from tests.factories import AccountFactory, EnvironmentFactory, MembershipFactory, UserFactory
from tests.helpers import assert_no_cookie_holds, walk

pytestmark = pytest.mark.django_db

ADD = "admin:stream_subscription_add"
SECRET_FIELD = re.compile(r'value="(whsec_[^"]+)"')


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(is_superuser=True))
    return client


def add_form(environment, **fields):
    url = "https://hooks.example.com/events"
    return {"environment": environment.pk, "url": url, "kinds": ["failed"],
            "payload_format": "standard", "enabled": "on"} | fields  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"url": "http://hooks.example.com/events"}, "url", "https://"),
        ({"url": "ftp://hooks.example.com/"}, "url", ""),
        ({"kinds": ["exploded"]}, "kinds", "exploded"),
        ({"kinds": []}, "kinds", "required"),
        ({"kinds": ["delivered"], "sub_kinds": ["bounce"]}, "sub_kinds", "bounce"),
        ({"kinds": ["sent"], "payload_format": "notificationapi"}, "kinds", "NotificationAPI"),
        ({"sub_kinds": ["nope"]}, "sub_kinds", "nope"),
    ],
)
def test_bad_subscriptions_get_an_error_on_the_field(superuser_client, fields, field, words):
    environment = EnvironmentFactory()
    response = superuser_client.post(reverse(ADD), add_form(environment, **fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not Subscription.objects.exists()


def test_plain_http_to_loopback_only_in_development(superuser_client):
    environment = EnvironmentFactory()
    data = add_form(environment, url="http://127.0.0.1:9000/events")
    with override_settings(OUTBOUND_ALLOW_LOOPBACK_HTTP=False):
        response = superuser_client.post(reverse(ADD), data)
        assert "production" in " ".join(response.context["adminform"].form.errors["url"])
    response = superuser_client.post(reverse(ADD), data)
    assert response.status_code == 302
    assert Subscription.objects.get().url == "http://127.0.0.1:9000/events"


def test_the_signing_secret_is_shown_once_on_its_own_page(superuser_client):
    environment = EnvironmentFactory()
    responses = walk(superuser_client, reverse(ADD), add_form(environment))
    assert responses[0].status_code == 302
    page = responses[-1]
    [secret] = SECRET_FIELD.findall(page.content.decode())
    # Read from every cookie of the add and its redirects, the signed message cookie decoded.
    assert_no_cookie_holds(responses, secret)
    assert "no-store" in page["Cache-Control"]
    assert superuser_client.get(responses[-2]["Location"]).status_code == 410
    # It is the secret deliveries are signed with.
    body = b"{}"
    headers = message_sign(
        secret=Subscription.objects.get().secret(),
        webhook_id="msg_x",
        sent_at=timezone.now(),
        body=body,
    )
    assert Webhook(secret).verify(body, headers) == {}
    change = superuser_client.get(
        reverse("admin:stream_subscription_change", args=[Subscription.objects.get().pk])
    )
    assert secret not in change.content.decode()


def test_a_disabled_subscriber_is_noticed_on_the_subscriptions_page(superuser_client):
    environment = EnvironmentFactory()
    subscription, _ = subscription_create(
        environment=environment, url="https://hooks.example.com/down", kinds=["failed"]
    )
    reason = "Disabled at 2026-01-02 03:04 UTC: every delivery failed for 24 hours."
    Subscription.objects.filter(pk=subscription.pk).update(
        enabled=False, disabled_at=timezone.now(), disabled_reason=reason
    )
    page = superuser_client.get(reverse("admin:stream_subscription_changelist"))
    messages = [str(message) for message in page.context["messages"]]
    assert messages == [f"https://hooks.example.com/down: {reason}"]


def message_of(environment) -> StreamMessage:
    subscription, _ = subscription_create(
        environment=environment, url="https://hooks.example.com/e", kinds=["failed"]
    )
    now = timezone.now()
    message = StreamMessage.objects.create(
        subscription=subscription, environment=environment, notification_id=uuid.uuid4(),
        event_id=1, event_type="notification.failed", webhook_id=f"msg_{subscription.pk}",
        body={}, retry_until=now, state="given_up", attempt_count=1, finished_at=now,
    )  # fmt: skip
    StreamAttempt.objects.create(message=message, status_code=None, error="ConnectTimeout: x")
    return message


def test_a_message_shows_each_attempt_and_can_be_replayed(superuser_client):
    message = message_of(EnvironmentFactory())
    page = superuser_client.get(
        reverse("admin:stream_streammessage_change", args=[message.pk])
    ).content.decode()
    assert "ConnectTimeout: x" in page
    listing = superuser_client.get(reverse("admin:stream_streammessage_changelist"))
    assert "ConnectTimeout: x" in listing.content.decode()

    superuser_client.post(
        reverse("admin:stream_streammessage_changelist"),
        {"action": "replay", "_selected_action": [message.pk]},
    )
    message.refresh_from_db()
    assert message.state == "pending" and message.retry_until > timezone.now()


def test_another_tenants_messages_and_subscriptions_answer_404(client):
    mine, theirs = AccountFactory(), AccountFactory()
    user = MembershipFactory(account=mine, role=Membership.Role.SUPPORT).user
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="stream"))
    client.force_login(user)
    own = message_of(EnvironmentFactory(account=mine))
    other = message_of(EnvironmentFactory(account=theirs))

    for name, obj in (("streammessage", other), ("subscription", other.subscription)):
        url = reverse(f"admin:stream_{name}_change", args=[obj.pk])
        assert client.get(url).status_code == 404
    listing = client.get(reverse("admin:stream_streammessage_changelist")).content.decode()
    assert own.webhook_id in listing or str(own.notification_id) in listing
    assert str(other.notification_id) not in listing
    # Support reads; replaying is for owners and admins.
    client.post(
        reverse("admin:stream_streammessage_changelist"),
        {"action": "replay", "_selected_action": [own.pk]},
    )
    own.refresh_from_db()
    assert own.state == "given_up"


def test_purge_runs_are_listed_read_only(superuser_client):
    account = AccountFactory(name="Acme")
    PurgeRun.objects.create(scope="account", account=account, account_name="Acme",
                            retention_days=2, rows_deleted=42)  # fmt: skip
    page = superuser_client.get(reverse("admin:logs_purgerun_changelist"))
    assert page.status_code == 200 and "Acme" in page.content.decode()
    assert superuser_client.get(reverse("admin:logs_purgerun_add")).status_code == 403


def test_an_accounts_members_see_its_purge_runs_only(client):
    mine, theirs = AccountFactory(name="Mine"), AccountFactory(name="Theirs")
    user = MembershipFactory(account=mine, role=Membership.Role.VIEWER).user
    user.user_permissions.add(Permission.objects.get(codename="view_purgerun"))
    client.force_login(user)
    own = PurgeRun.objects.create(scope="account", account=mine, account_name="Mine",
                                  retention_days=2, rows_deleted=42)  # fmt: skip
    other = PurgeRun.objects.create(scope="account", account=theirs, account_name="Theirs",
                                    retention_days=3, rows_deleted=7)  # fmt: skip
    PurgeRun.objects.create(scope="install", retention_days=7, partitions_dropped=["x_p1"])

    listing = client.get(reverse("admin:logs_purgerun_changelist"))
    assert [run.pk for run in listing.context["cl"].result_list] == [own.pk]
    change = reverse("admin:logs_purgerun_change", args=[own.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"rows_deleted": 0}).status_code == 403
    other_page = reverse("admin:logs_purgerun_change", args=[other.pk])
    assert client.get(other_page).status_code == 404


@override_settings(LOG_RETENTION_DAYS=7)
def test_an_account_retention_is_at_most_the_installs(superuser_client):
    account = AccountFactory()
    url = reverse("admin:accounts_account_change", args=[account.pk])
    response = superuser_client.post(url, {"name": account.name, "retention_days": 8})
    assert "LOG_RETENTION_DAYS" in " ".join(
        response.context["adminform"].form.errors["retention_days"]
    )
    response = superuser_client.post(url, {"name": account.name, "retention_days": 0})
    assert "retention_days" in response.context["adminform"].form.errors
    assert (
        superuser_client.post(
            url, {"name": account.name, "retention_days": 2, "viewer_addresses": "all"}
        ).status_code
        == 302
    )
    account.refresh_from_db()
    assert account.retention_days == 2
