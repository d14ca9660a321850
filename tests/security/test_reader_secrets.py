"""Issue 16, item 8, as a reader would find the secrets: a support or viewer member of an
account opens the console's pages (real HTTP through Django's test client, logged in) and looks
for an alert rule's Slack URL, a stream subscriber's URL, a provider's signature in the webhook
inbox, and a password-reset token sent inside a link. None of them appears anywhere in the
HTML; an owner, who manages the account, still sees the configuration (the control that
proves each page would show the secret)."""

import base64
import json

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import Membership
from alerts.models import AlertRule
from config.celery import app as celery_app
from stream.models import StreamMessage, Subscription
from tests.console.conftest import bounced_email
from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory
from tests.notifications.factories import ChannelTemplateFactory, NotificationTypeFactory
from webhooks.models import InboxEntry, InboxState

pytestmark = pytest.mark.django_db
SLACK_URL = "https://hooks.slack.com/services/T0HOSTILE/B0SECRET/xoxbSLACKSECRET123"
SUBSCRIBER_URL = "https://events.customer.example/hooks/nlc?key=SUBSCRIBERKEY789"
RESET_LINK = "https://app.example.com/reset?token=SECRETTOKEN456"
SECRET = "reader-secrets-client-secret-0123"


def member(environment, role: str, name: str):
    """A console member of the environment's account with the read rights of every app."""
    user = UserFactory(username=name)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["logs", "notifications", "webhooks", "alerts", "stream"],
            codename__startswith="view_",
        )
    )
    MembershipFactory(user=user, account=environment.account, role=role)
    return user


@pytest.fixture
def environment():
    return EnvironmentFactory(client_secret=SECRET)


READERS = [Membership.Role.SUPPORT, Membership.Role.VIEWER]


# -- alert rules ---------------------------------------------------------------------------


@pytest.fixture
def slack_rule(environment):
    return AlertRule.objects.create(
        environment=environment, name="Bounces to Slack", kind="failure_rate",
        webhook_url=SLACK_URL,
    )  # fmt: skip


@pytest.mark.parametrize("role", READERS)
def test_a_reader_opening_an_alert_rule_never_sees_its_slack_url(
    client, environment, slack_rule, role
):
    client.force_login(member(environment, role, f"reader-{role}"))

    page = client.get(f"/admin/alerts/alertrule/{slack_rule.pk}/change/")
    listing = client.get("/admin/alerts/alertrule/")
    history = client.get(f"/admin/alerts/alertrule/{slack_rule.pk}/history/")

    assert page.status_code == listing.status_code == history.status_code == 200
    for response in (page, listing, history):
        html = response.content.decode()
        assert "B0SECRET" not in html and "xoxbSLACKSECRET123" not in html
    assert "https://hooks.slack.com/…" in page.content.decode()  # where it goes, not how


def test_an_owner_still_sees_the_slack_url_to_manage_it(client, environment, slack_rule):
    client.force_login(member(environment, Membership.Role.OWNER, "owner"))
    page = client.get(f"/admin/alerts/alertrule/{slack_rule.pk}/change/")
    assert SLACK_URL in page.content.decode()


# -- stream subscriptions ------------------------------------------------------------------


@pytest.fixture
def subscription(environment):
    disabled = Subscription.objects.create(
        environment=environment, url=SUBSCRIBER_URL, kinds=["delivered"], enabled=False,
        disabled_at=timezone.now(), disabled_reason="Disabled after a day of failures.",
    )  # fmt: skip
    notification = bounced_email(environment)
    StreamMessage.objects.create(
        subscription=disabled, environment=environment, notification_id=notification.id,
        event_id=1, event_type="delivered", webhook_id="msg_reader_secrets",
        body={"type": "delivered"}, retry_until=timezone.now(),
    )  # fmt: skip
    return disabled


@pytest.mark.parametrize("role", READERS)
def test_a_reader_sees_no_subscriber_url_in_lists_pages_or_flashed_notices(
    client, environment, subscription, role
):
    client.force_login(member(environment, role, f"reader-{role}"))

    pages = [
        client.get("/admin/stream/subscription/"),  # flashes the disabled subscriber's notice
        client.get(f"/admin/stream/subscription/{subscription.pk}/change/"),
        client.get("/admin/stream/streammessage/"),
        client.get(f"/admin/stream/streammessage/{subscription.messages.get().pk}/change/"),
    ]

    for response in pages:
        assert response.status_code == 200
        html = response.content.decode()
        assert "SUBSCRIBERKEY789" not in html and "/hooks/nlc" not in html, response.request
    assert "Disabled after a day of failures." in pages[0].content.decode()  # notice kept


def test_an_owner_sees_the_subscriber_url(client, environment, subscription):
    client.force_login(member(environment, Membership.Role.OWNER, "owner"))
    page = client.get(f"/admin/stream/subscription/{subscription.pk}/change/")
    assert SUBSCRIBER_URL in page.content.decode()


# -- the webhook inbox ---------------------------------------------------------------------


@pytest.mark.parametrize("role", [*READERS, Membership.Role.OWNER])
def test_the_inbox_masks_signatures_tokens_and_the_notifications_secrets(client, environment, role):
    # A password-reset email (merge tag reset_token) whose link the user clicked: the
    # provider's click callback carries the reset URL (the token in its path and query).
    notification = bounced_email(environment)
    message_id = notification.deliveries.get().provider_message_id
    token = notification.merge_tags["reset_token"]
    clicked = InboxEntry.objects.create(
        provider="postmark", path="/webhooks/email/postmark/", state=InboxState.PROCESSED,
        environment=environment, message_ids=[message_id],
        headers={"Content-Type": "application/json", "X-Postmark-Signature": "SIGNATUREVALUE1"},
        body=json.dumps({
            "RecordType": "Click", "MessageID": message_id,
            "OriginalLink": f"https://app.example.com/reset/{token}?token={token}",
            "ClickLocation": "HTML",
        }).encode(),
    )  # fmt: skip
    sms = InboxEntry.objects.create(
        provider="twilio_sms", path="/webhooks/twilio/sms/", state=InboxState.PROCESSED,
        environment=environment,
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "X-Twilio-Signature": "TWILIOSIGNATURE22"},
        body=b"MessageSid=SM1&MessageStatus=delivered&AuthToken=LEAKEDAUTHTOKEN33&To=%2B1415",
    )  # fmt: skip
    client.force_login(member(environment, role, f"inbox-{role}"))

    for entry in (clicked, sms):
        response = client.get(f"/admin/webhooks/inboxentry/{entry.pk}/change/")
        assert response.status_code == 200
        html = response.content.decode()
        for secret in (token, "SIGNATUREVALUE1", "TWILIOSIGNATURE22", "LEAKEDAUTHTOKEN33"):
            assert secret not in html
    clicked_html = client.get(f"/admin/webhooks/inboxentry/{clicked.pk}/change/").content.decode()
    assert "https://app.example.com/reset/" in clicked_html  # the rest stays readable
    assert "MessageStatus=delivered" in (
        client.get(f"/admin/webhooks/inboxentry/{sms.pk}/change/").content.decode()
    )


# -- a reset link on the notification page -------------------------------------------------


def _password_reset_type(environment):
    """The demo's password_reset, with the link as the integrator passes it: a merge tag
    whose name says nothing of the token inside it."""
    notification_type = NotificationTypeFactory(environment=environment, key="password_reset")
    ChannelTemplateFactory(
        notification_type=notification_type, channel="email",
        subject="Reset your password",
        html='<p>Hi {{ firstName }},</p><p><a href="{{ resetLink }}">Choose a new password'
             "</a></p>",
        text="Hi {{ firstName }}, reset your password: {{ resetLink }}",
    )  # fmt: skip
    ChannelTemplateFactory(
        notification_type=notification_type, channel="sms", subject="", html="",
        text="Reset your password: {{ resetLink }}",
    )  # fmt: skip


@pytest.fixture
def sent_reset(client, environment, django_capture_on_commit_callbacks, settings):
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # the sandbox's callbacks go nowhere
    _password_reset_type(environment)
    body = {
        "notificationId": "password_reset",
        "user": {"id": "usr_ada", "email": "ada@example.com", "number": "+447700900123"},
        "mergeTags": {"firstName": "Ada", "resetLink": RESET_LINK},
        "inapp": {"title": "Reset your password", "url": RESET_LINK},
    }
    token = base64.b64encode(f"{environment.client_id}:{SECRET}".encode()).decode()
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/{environment.client_id}/sender", data=json.dumps(body),
                content_type="application/json", headers={"authorization": f"Basic {token}"},
            )  # fmt: skip
    finally:
        celery_app.conf.task_always_eager = previous
    assert response.status_code in (200, 202), response.content
    return response.json()["trackingId"]


@pytest.mark.parametrize("role", READERS)
def test_a_reset_token_inside_a_link_is_masked_on_the_notification_page(
    client, environment, sent_reset, role
):
    client.force_login(member(environment, role, f"reader-{role}"))

    page = client.get(f"/admin/logs/notification/{sent_reset}/change/")
    feed = client.get(f"/admin/logs/notification/{sent_reset}/events.json")

    html = page.content.decode()
    assert page.status_code == 200
    assert "SECRETTOKEN456" not in html
    assert "SECRETTOKEN456" not in feed.content.decode()
    assert "https://app.example.com/reset?token=••••••" in html  # host and path stay
    assert "are masked" in html  # the banner tells the truth now


def test_the_owner_reveals_what_was_masked(client, environment, sent_reset):
    # The control: the page does hold the link (request, email, SMS), masked until revealed.
    client.force_login(member(environment, Membership.Role.OWNER, "owner"))
    masked = client.get(f"/admin/logs/notification/{sent_reset}/change/").content.decode()
    revealed = client.post(f"/admin/logs/notification/{sent_reset}/reveal/").content.decode()
    assert "SECRETTOKEN456" not in masked
    assert revealed.count("SECRETTOKEN456") >= 3


def test_the_pure_masker_finds_tokens_in_urls_under_any_name():
    from logs.masking import MASK, masker_build

    masker = masker_build(sources=[{"link": RESET_LINK}], words=["token", "password"])
    assert masker.text(f'<a href="{RESET_LINK}&amp;x=1">') == (
        f'<a href="https://app.example.com/reset?token={MASK}&amp;x=1">'
    )
    for url in ("https://x.example/cb?api_key=ABCD1234", "https://x.example/s3?X-Amz-Signature=ab12cd",
                "https://x.example/#access_token=zz99yy88", "https://x.example/?otp=123456",
                "https://x.example/?reset_token=qwerty12&a=1"):  # fmt: skip
        masked = masker.text(url)
        assert MASK in masked and masked.split(MASK)[0] in url, url
    assert masker.text("https://x.example/?page=2&q=shoes") == "https://x.example/?page=2&q=shoes"
