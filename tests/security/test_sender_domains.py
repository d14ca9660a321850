"""Issue 16, item 4: spoofed senders. A tenant with a `send` credential tries to send as
another tenant's domain (options.email.fromAddress, the inline email.senderEmail) and to copy
a message to many people at once (cc, bcc). Only the install's DEFAULT_FROM_EMAIL domain and
the environment's verified sender domains are allowed; only the account's owners manage those
domains in the console."""

import json
import uuid

import pytest
from django.contrib.auth.models import Permission

from accounts.models import Membership
from logs.models import Notification
from notifications.models import SenderDomain
from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory
from tests.notifications import conftest as send_fixtures
from tests.notifications.helpers import delivery, labels, rows_and_folded, send

pytestmark = pytest.mark.django_db

# The send tests' fixtures: an environment, its client-secret credential, a catalogue type.
environment = send_fixtures.environment
auth = send_fixtures.auth
order_tracking = send_fixtures.order_tracking

BODY = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "alice@example.com"},
    "mergeTags": {"first_name": "Alice", "order_id": "A-1"},
    "forceChannels": ["EMAIL"],
}


@pytest.fixture(autouse=True)
def install(settings):
    settings.DEFAULT_FROM_EMAIL = "Notify <notify@install.test>"
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"


@pytest.fixture
def in_process_dispatch():
    from config.celery import app as celery_app

    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def victim():
    """Another tenant, whose owner verified acme.test for its environment."""
    environment = EnvironmentFactory()
    SenderDomain.objects.create(environment=environment, domain="acme.test")
    return environment


def post(client, environment, auth, body):
    return client.post(
        f"/{environment.client_id}/sender",
        data=json.dumps(body),
        content_type="application/json",
        headers=auth,
    )


def with_email_options(**options) -> dict:
    return {**BODY, "options": {"email": options}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (with_email_options(fromAddress="ceo@acme.test"), "options.email.fromAddress"),
        (
            {**BODY, "email": {"subject": "Invoice", "senderEmail": "billing@ACME.test"}},
            "email.senderEmail",
        ),
    ],
)
def test_sending_as_another_tenants_domain_is_refused_naming_the_allowed_domains(
    body, field, client, environment, auth, order_tracking, victim
):
    response = post(client, environment, auth, body)
    assert response.status_code == 400, response.content
    message = response.json()["message"]
    assert message.startswith(f"{field} ") and "not on a verified sender domain" in message
    assert "install.test" in message  # what this tenant may use instead
    assert "acme.test under Verified sender domains" in message
    assert not Notification.objects.exists()


def test_the_install_domain_and_the_tenants_own_verified_domain_are_allowed(
    client, environment, auth, order_tracking, in_process_dispatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    SenderDomain.objects.create(environment=environment, domain="shop.example")
    for address in ("billing@install.test", "news@shop.example"):
        body = with_email_options(fromName="Shop", fromAddress=address)
        notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
        assert labels(notification, "email") == ["Sending", "Sent"]
        # The first attempt's Sending, folded into the delivery (logs.timeline) or a row.
        [sending] = rows_and_folded(notification, kind="sending")
        assert sending.payload["from"] == f"Shop <{address}>"


def test_a_domain_removed_before_a_scheduled_send_goes_out_fails_that_email(
    client, environment, auth, order_tracking, in_process_dispatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from notifications.dispatch import notification_dispatch
    from notifications.models import Outbox

    domain = SenderDomain.objects.create(environment=environment, domain="shop.example")
    with django_capture_on_commit_callbacks(execute=False):
        response = post(client, environment, auth, with_email_options(fromAddress="a@shop.example"))
    assert response.status_code == 200
    domain.delete()  # an owner withdrew it
    Outbox.objects.update(due_at=Outbox.objects.get().created_at)
    notification_dispatch(notification_id=uuid.UUID(response.json()["trackingId"]))
    notification = Notification.objects.get()
    assert labels(notification, "email") == ["Failed"]
    assert "not on a verified sender domain" in delivery(notification, "email").error_message


@pytest.mark.parametrize(
    ("field", "setting"),
    [("ccAddresses", "SEND_EMAIL_MAX_CC"), ("bccAddresses", "SEND_EMAIL_MAX_BCC")],
)
def test_copies_past_the_cap_are_refused(
    field, setting, client, environment, auth, order_tracking, settings
):
    settings.SEND_EMAIL_MAX_CC = settings.SEND_EMAIL_MAX_BCC = 10
    many = [f"target{index}@example.net" for index in range(11)]
    response = post(client, environment, auth, with_email_options(**{field: many}))
    assert response.status_code == 400, response.content
    message = response.json()["message"]
    assert f"options.email.{field} has 11 addresses; at most 10" in message
    assert setting in message
    assert not Notification.objects.exists()
    within = post(client, environment, auth, with_email_options(**{field: many[:10]}))
    assert within.status_code == 200, within.content


def member(account, role: str, username: str):
    user = UserFactory(username=username)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="notifications", codename__endswith="_senderdomain"
        )
    )
    MembershipFactory(user=user, account=account, role=role)
    return user


def test_only_owners_add_sender_domains_in_the_console(client, environment, victim):
    add_url = "/admin/notifications/senderdomain/add/"
    form = {"environment": environment.pk, "domain": "Mail.Example.COM"}
    for role in (Membership.Role.ADMIN, Membership.Role.SUPPORT, Membership.Role.VIEWER):
        client.force_login(member(environment.account, role, f"{role}-user"))
        assert client.get("/admin/notifications/senderdomain/").status_code == 200
        assert client.post(add_url, form).status_code == 403, role
    assert not SenderDomain.objects.filter(environment=environment).exists()

    owner = member(environment.account, Membership.Role.OWNER, "owner-user")
    client.force_login(owner)
    page = client.get(add_url).content.decode()
    assert "does not check DNS" in page  # what "verified" means here
    assert client.post(add_url, form).status_code == 302
    added = SenderDomain.objects.get(environment=environment)
    assert added.domain == "mail.example.com" and added.added_by == owner

    # Not into another tenant's environment, and another tenant's domains are not shown.
    refused = client.post(add_url, {"environment": victim.pk, "domain": "evil.test"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    listing = client.get("/admin/notifications/senderdomain/").content.decode()
    assert "mail.example.com" in listing and "acme.test" not in listing
    theirs = SenderDomain.objects.get(environment=victim)
    assert client.get(f"/admin/notifications/senderdomain/{theirs.pk}/change/").status_code == 404


def test_an_admin_cannot_change_or_delete_an_owners_domain(client, environment):
    domain = SenderDomain.objects.create(environment=environment, domain="shop.example")
    client.force_login(member(environment.account, Membership.Role.ADMIN, "admin-user"))
    change = f"/admin/notifications/senderdomain/{domain.pk}/change/"
    assert (
        client.post(change, {"environment": environment.pk, "domain": "evil.test"}).status_code
        == 403
    )
    delete = f"/admin/notifications/senderdomain/{domain.pk}/delete/"
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert SenderDomain.objects.get(pk=domain.pk).domain == "shop.example"
