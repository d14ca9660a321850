import pytest
from django.contrib.auth.models import Permission

from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory
from tests.logs.factories import DeliveryFactory, EventFactory, NotificationFactory
from tests.notifications.factories import ChannelTemplateFactory, UserPreferenceFactory


@pytest.fixture
def two_tenants():
    mine, theirs = EnvironmentFactory(), EnvironmentFactory()
    own = NotificationFactory(environment=mine, user_id="usr_mine")
    other = NotificationFactory(environment=theirs, user_id="usr_theirs")
    for notification in (own, other):
        DeliveryFactory(notification=notification)
        EventFactory(notification=notification)
    return mine, theirs, own, other


def _support_client(client, environment):
    user = UserFactory(username="helpdesk")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["logs", "console", "notifications"],
            codename__startswith="view_",
        )
    )
    MembershipFactory(user=user, account=environment.account)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_support_sees_only_their_accounts_log_rows(client, two_tenants):
    # Deliveries and events are shown on the console's notification page (masked), not listed.
    mine, _, own, other = two_tenants
    response = _support_client(client, mine).get("/admin/logs/notification/")
    assert response.status_code == 200
    body = response.content.decode()
    assert str(own.id) in body
    assert str(other.id) not in body


@pytest.mark.django_db
def test_another_tenants_notification_page_is_not_shown(client, two_tenants):
    mine, _, _, other = two_tenants
    response = _support_client(client, mine).get(f"/admin/logs/notification/{other.id}/change/")
    # As for an id that does not exist: nothing confirms the other tenant's row is there.
    assert response.status_code == 404
    assert "usr_theirs" not in response.content.decode()


@pytest.mark.django_db
def test_log_rows_cannot_be_added_or_edited_in_the_console(admin_client, two_tenants):
    _, _, own, _ = two_tenants
    assert admin_client.get("/admin/logs/notification/add/").status_code == 403
    page = admin_client.get(f"/admin/logs/notification/{own.id}/change/")
    assert page.status_code == 200
    assert 'type="submit" value="Save"' not in page.content.decode()


@pytest.mark.django_db
def test_catalogue_and_preferences_are_listed_per_tenant(client):
    mine, theirs = EnvironmentFactory(), EnvironmentFactory()
    ChannelTemplateFactory(notification_type__environment=mine, notification_type__key="shipped")
    ChannelTemplateFactory(notification_type__environment=theirs, notification_type__key="secret")
    UserPreferenceFactory(environment=mine, user_id="usr_a")
    UserPreferenceFactory(environment=theirs, user_id="usr_b")
    support = _support_client(client, mine)
    types = support.get("/admin/notifications/notificationtype/").content.decode()
    assert "shipped" in types and "secret" not in types
    prefs = support.get("/admin/notifications/userpreference/").content.decode()
    assert "usr_a" in prefs and "usr_b" not in prefs


@pytest.mark.django_db
def test_log_lists_never_count_the_whole_table(admin_client, django_assert_max_num_queries):
    environment = EnvironmentFactory()
    made = NotificationFactory.create_batch(3, environment=environment)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/logs/notification/")
    assert response.status_code == 200
    assert all(str(n.id) in response.content.decode() for n in made)
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
