"""The console's sending pages: end users with their preferences, per tenant; sub-notifications
and channel providers; no page counts or queries per row."""

import pytest
from django.contrib.auth.models import Permission

from notifications.models import ChannelProvider, EndUser, SubNotification
from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory
from tests.notifications.factories import UserPreferenceFactory

pytestmark = pytest.mark.django_db


def support_login(client, environment):
    user = UserFactory(username="helpdesk")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="notifications", codename__startswith="view_"
        )
    )
    MembershipFactory(user=user, account=environment.account)
    client.force_login(user)
    return client


def test_end_users_are_listed_per_tenant_and_show_their_preferences(
    client, django_assert_max_num_queries
):
    mine, theirs = EnvironmentFactory(), EnvironmentFactory()
    alice = EndUser.objects.create(environment=mine, user_id="alice", email="a@example.com")
    EndUser.objects.create(environment=theirs, user_id="mallory")
    UserPreferenceFactory(
        environment=mine, user_id="alice", notification_type="digest", channel="email"
    )
    UserPreferenceFactory(environment=theirs, user_id="alice", notification_type="secret_type")
    support = support_login(client, mine)
    with django_assert_max_num_queries(12):
        listing = support.get("/admin/notifications/enduser/").content.decode()
    assert "alice" in listing and "mallory" not in listing
    page = support.get(f"/admin/notifications/enduser/{alice.pk}/change/").content.decode()
    assert "digest / Email: <strong>Off</strong>" in page
    assert "secret_type" not in page  # the same user id in another tenant is another user


def test_sub_notifications_and_channel_providers_pages(admin_client):
    environment = EnvironmentFactory()
    SubNotification.objects.create(
        environment=environment,
        notification_type="order_tracking",
        sub_notification_id="proj-1",
        title="Apollo",
    )
    ChannelProvider.objects.create(environment=environment, channel="email", provider="sandbox")
    assert "Apollo" in admin_client.get("/admin/notifications/subnotification/").content.decode()
    page = admin_client.get("/admin/notifications/channelprovider/add/")
    assert page.status_code == 200 and 'value="sandbox"' in page.content.decode()


def test_a_provider_that_cannot_carry_the_channel_is_refused(admin_client):
    environment = EnvironmentFactory()
    response = admin_client.post(
        "/admin/notifications/channelprovider/add/",
        {"environment": environment.pk, "channel": "sms", "provider": "email"},
    )
    assert response.status_code == 200
    assert "&#x27;email&#x27; cannot send SMS" in response.content.decode()
    assert not ChannelProvider.objects.exists()
