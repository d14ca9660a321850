"""The rest of the console speaks like the support pages (issue 17, item 7): every admin page
shows times with seconds in the viewer's zone, labels read as words, a missing or forbidden
page is the product's page (in the demo's DEBUG too), pages keep their breadcrumb band, and
a scheduled notification shows when it is due. Through the test client, as a browser asks."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse

from accounts.models import ApiKey, Invitation, Membership
from alerts.models import Alert, AlertNotice
from alerts.vocabulary import RuleKind
from logs.models import PurgeRun
from logs.services import notification_create
from notifications.models import EndUser
from stream.models import StreamAttempt, StreamMessage, Subscription
from tests.alerts.helpers import rule
from tests.console.conftest import console_user
from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory
from tests.notifications.factories import NotificationTypeFactory
from webhooks.models import InboxEntry, InboxState

pytestmark = pytest.mark.django_db

# 21:42:13 UTC is 22:42:13 in Paris in December: the page must say so, with the seconds.
MOMENT = datetime(2026, 12, 6, 21, 42, 13, tzinfo=UTC)
PARIS = "2026-12-06 22:42:13 CET"
DJANGO_STYLE = ("Dec. 6, 2026", "p.m.", "10:42 p.m.", "9:42 p.m.")


@pytest.fixture
def paris_superuser(client):
    client.force_login(UserFactory(is_superuser=True))
    client.cookies["console_tz"] = "Europe/Paris"  # what the browser's zone.js stores
    return client


def _shows_paris_time(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    body = response.content.decode()
    assert PARIS in body, url
    assert not any(text in body for text in DJANGO_STYLE), url
    return body


def _alert(environment):
    alert_rule = rule(environment, name="Bounces", last_value=4.0, evaluated_at=MOMENT)
    alert = Alert.objects.create(
        rule=alert_rule, environment=environment, fired_at=MOMENT, fired_value=4.0,
        last_value=4.0, summary="4 of 5 failed", window_start=MOMENT - timedelta(minutes=10),
    )  # fmt: skip
    AlertNotice.objects.create(alert=alert, transition="fired", channel="email", sent_at=MOMENT)
    return alert


def test_alerts_pages_show_times_in_the_viewers_zone_with_seconds(paris_superuser):
    alert = _alert(EnvironmentFactory())
    _shows_paris_time(paris_superuser, reverse("admin:alerts_alert_changelist"))
    _shows_paris_time(paris_superuser, reverse("admin:alerts_alert_change", args=[alert.pk]))
    _shows_paris_time(paris_superuser, reverse("admin:alerts_alertrule_changelist"))
    _shows_paris_time(
        paris_superuser, reverse("admin:alerts_alertrule_change", args=[alert.rule_id])
    )


def test_stream_pages_show_times_in_the_viewers_zone_with_seconds(paris_superuser):
    environment = EnvironmentFactory()
    subscription = Subscription.objects.create(
        environment=environment, url="https://hooks.example.com/in", kinds=["failed"],
        failing_since=MOMENT,
    )  # fmt: skip
    message = StreamMessage.objects.create(
        subscription=subscription, environment=environment, notification_id=uuid.uuid4(),
        event_id=1, event_type="notification.failed", webhook_id="msg_1", body={},
        created_at=MOMENT, retry_until=MOMENT, next_attempt_at=MOMENT,
    )  # fmt: skip
    StreamAttempt.objects.create(message=message, attempted_at=MOMENT, status_code=500)
    PurgeRun.objects.create(started_at=MOMENT, scope="install", retention_days=7)
    body = _shows_paris_time(paris_superuser, reverse("admin:stream_subscription_changelist"))
    assert f"Failing since {PARIS}" in body
    body = _shows_paris_time(paris_superuser, reverse("admin:stream_streammessage_changelist"))
    assert f"500 at {PARIS}" in body  # the last attempt
    _shows_paris_time(
        paris_superuser, reverse("admin:stream_streammessage_change", args=[message.pk])
    )
    _shows_paris_time(paris_superuser, reverse("admin:logs_purgerun_changelist"))


def test_accounts_pages_show_times_in_the_viewers_zone_with_seconds(paris_superuser):
    environment = EnvironmentFactory()
    key = ApiKey.objects.create(environment=environment, name="ci", prefix="abcd1234",
                                created_at=MOMENT, last_used_at=MOMENT)  # fmt: skip
    invitation = Invitation.objects.create(
        account=environment.account, email="new@example.com", role=Membership.Role.SUPPORT,
        token_hash=uuid.uuid4().hex, expires_at=MOMENT, email_sent_at=MOMENT,
    )  # fmt: skip
    _shows_paris_time(paris_superuser, reverse("admin:accounts_apikey_changelist"))
    _shows_paris_time(paris_superuser, reverse("admin:accounts_apikey_change", args=[key.pk]))
    body = _shows_paris_time(paris_superuser, reverse("admin:accounts_invitation_changelist"))
    assert f"sent {PARIS}" in body
    _shows_paris_time(
        paris_superuser, reverse("admin:accounts_invitation_change", args=[invitation.pk])
    )


def test_webhooks_inbox_shows_times_in_the_viewers_zone_with_seconds(paris_superuser):
    entry = InboxEntry.objects.create(
        received_at=MOMENT, provider="twilio_sms", path="/webhooks/twilio/sms/", body=b"a=1",
        state=InboxState.PROCESSED, processed_at=MOMENT,
    )  # fmt: skip
    _shows_paris_time(paris_superuser, reverse("admin:webhooks_inboxentry_changelist"))
    _shows_paris_time(paris_superuser, reverse("admin:webhooks_inboxentry_change", args=[entry.pk]))


def test_notifications_pages_show_times_in_the_viewers_zone_with_seconds(paris_superuser):
    environment = EnvironmentFactory()
    kind = NotificationTypeFactory(environment=environment, key="order_tracking")
    kind.created_at = MOMENT
    kind.save()
    EndUser.objects.create(environment=environment, user_id="usr_a", created_at=MOMENT,
                           updated_at=MOMENT)  # fmt: skip
    _shows_paris_time(paris_superuser, reverse("admin:notifications_notificationtype_changelist"))
    _shows_paris_time(paris_superuser, reverse("admin:notifications_enduser_changelist"))


def test_without_the_cookie_times_are_utc_and_say_so(client):
    client.force_login(UserFactory(is_superuser=True))
    _alert(EnvironmentFactory())
    body = client.get(reverse("admin:alerts_alert_changelist")).content.decode()
    assert "2026-12-06 21:42:13 UTC" in body


def test_alert_labels_read_as_words(paris_superuser):
    environment = EnvironmentFactory()
    alert = _alert(environment)  # a failure rate rule: 4.0 is 4%
    count_rule = rule(environment, name="Too many bounces", kind=RuleKind.EVENT_COUNT,
                      event="failed:bounce", max_events=2, threshold_percent=None,
                      last_value=3.0)  # fmt: skip
    page = paris_superuser.get(reverse("admin:alerts_alert_change", args=[alert.pk]))
    body = page.content.decode()
    assert "Email notice when it fired" in body and "Fired by Email" not in body
    assert ">4%<" in body.replace("</div>", "<").replace('<div class="readonly">', ">")
    assert ">4.0<" not in body
    rules = paris_superuser.get(reverse("admin:alerts_alertrule_changelist")).content.decode()
    assert "3 Failed - Bounce" in rules and ">3.0<" not in rules
    assert count_rule.name in rules


TECHNICAL_404 = "Using the URLconf defined in"  # Django's debug 404 page


@pytest.mark.parametrize("debug", [True, False])
def test_a_missing_page_is_the_products_page_even_in_debug(client, debug):
    environment = EnvironmentFactory()
    client.force_login(console_user(environment))
    with override_settings(DEBUG=debug):
        missing = client.get(f"/admin/logs/notification/{uuid.uuid4()}/change/")
        nowhere = client.get("/no/such/page/", HTTP_ACCEPT="text/html,*/*")
        api = client.get("/no/such/page/", HTTP_ACCEPT="application/json")
    for response in (missing, nowhere):
        body = response.content.decode()
        assert response.status_code == 404
        assert TECHNICAL_404 not in body and "Page not found" in body
        assert 'class="breadcrumbs"' in body and "Find a notification" in body
    assert "No notification with this tracking id in your accounts." in missing.content.decode()
    assert api.status_code == 404 and api.json() == {"message": "Not found: /no/such/page/"}


def test_a_forbidden_action_is_the_products_page(client):
    environment = EnvironmentFactory()
    notification = notification_create(
        environment_id=environment.id, notification_type="password_reset", user_id="usr_a"
    )
    client.force_login(console_user(environment, role=Membership.Role.VIEWER))
    with override_settings(DEBUG=True):
        response = client.post(f"/admin/logs/notification/{notification.id}/resend/")
    body = response.content.decode()
    assert response.status_code == 403
    assert "Not allowed" in body and 'class="breadcrumbs"' in body
    assert "Viewers do not resend: ask an owner, admin or support member." in body


BAND = '<ol class="breadcrumbs">'  # Django's admin CSS styles this band, not a div.breadcrumbs


def test_pages_outside_the_support_console_have_the_breadcrumb_band(client):
    login = client.get("/admin/login/").content.decode()
    assert f'{BAND}<li aria-current="page">Sign in</li></ol>' in login
    client.force_login(UserFactory(is_superuser=True))
    home = client.get("/admin/").content.decode()
    assert f'{BAND}<li aria-current="page">Home</li></ol>' in home
    for url in ["/admin/insights/hourlyrollup/", "/admin/mailbox/"]:
        assert BAND in client.get(url).content.decode(), url
    with override_settings(DEBUG=True):
        assert BAND in client.get("/admin/no/such/page/").content.decode()


def test_a_scheduled_notification_shows_when_it_is_due_in_the_viewers_zone(client):
    environment = EnvironmentFactory()
    notification = notification_create(
        environment_id=environment.id, notification_type="password_reset", user_id="usr_a",
        request={"type": "password_reset", "to": {"id": "usr_a"}, "schedule": MOMENT.isoformat()},
        scheduled_for=MOMENT,
    )  # fmt: skip
    client.force_login(console_user(environment))
    client.cookies["console_tz"] = "Europe/Paris"
    body = client.get(f"/admin/logs/notification/{notification.id}/change/").content.decode()
    due = body[body.index("Scheduled for") :]
    assert PARIS in due[: due.index("</dd>")]


def _resend_setup(environment):
    from tests.notifications.factories import ChannelTemplateFactory, UserPreferenceFactory

    kind = NotificationTypeFactory(environment=environment, key="password_reset")
    ChannelTemplateFactory(notification_type=kind, channel="email")
    ChannelTemplateFactory(notification_type=kind, channel="sms")
    ChannelTemplateFactory(notification_type=kind, channel="call", enabled=False)
    UserPreferenceFactory(
        environment=environment, user_id="usr_alice", notification_type="password_reset",
        channel="sms", delivery="off",
    )  # fmt: skip


def test_resend_asks_first_and_names_its_channels(client):
    from console.models import ResendLink
    from tests.console.conftest import bounced_email

    environment = EnvironmentFactory()
    _resend_setup(environment)
    original = bounced_email(environment)
    client.force_login(console_user(environment))
    url = f"/admin/logs/notification/{original.id}/resend/"
    page = client.get(url)
    body = page.content.decode()
    assert page.status_code == 200 and not ResendLink.objects.exists()  # nothing sent yet
    assert '<li data-channel="email"><strong>Email</strong> to alice@example.com</li>' in body
    assert "SMS</strong>: user usr_alice turned it off" in body
    assert "Call</strong>: turned off in the console" in body
    assert "Yes, resend by Email" in body


def test_recorded_times_are_shown_not_inputs(client):
    from tests.notifications.factories import UserPreferenceFactory

    environment = EnvironmentFactory()
    manager = UserFactory()
    manager.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["auth", "notifications"])
    )
    MembershipFactory(user=manager, account=environment.account, role=Membership.Role.OWNER)
    member = UserFactory(username="helpdesk-member")
    MembershipFactory(user=member, account=environment.account, role=Membership.Role.SUPPORT)
    preference = UserPreferenceFactory(environment=environment, updated_at=MOMENT)
    client.force_login(manager)
    client.cookies["console_tz"] = "Europe/Paris"

    user_page = client.get(reverse("admin:auth_user_change", args=[member.pk])).content.decode()
    assert 'name="username"' in user_page  # the form is editable for them…
    assert 'name="last_login_0"' not in user_page and 'name="date_joined_0"' not in user_page
    body = _shows_paris_time(
        client, reverse("admin:notifications_userpreference_change", args=[preference.pk])
    )
    assert 'name="delivery"' in body and 'name="updated_at_0"' not in body
