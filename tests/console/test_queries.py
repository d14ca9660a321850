"""Each console page runs a fixed number of queries whatever the number of rows: an N+1 fails
here, not in front of a customer. Counted with few rows and with many; the two must match and
stay under the bound."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from logs.services import event_record, notification_create
from tests.console.conftest import console_user
from tests.notifications.factories import UserPreferenceFactory

# Every page: session, user, the user's permissions (2), environments, roles. The list: +
# catalogue, the page, its deliveries. The notification page: + notification, masking words,
# deliveries, events, resend links, and the in-app item when an in-app channel was chosen.
# The user's timeline: + preferences, contact details. Both + the access record (audit/).
LIST_MAX = 9
PAGE_MAX = 13
USER_MAX = 12


def _notifications(environment, count, *, user_id="usr_q", channels=("email", "sms")):
    made = []
    start = timezone.now() - timedelta(hours=1)
    for i in range(count):
        created_at = start + timedelta(seconds=i)
        n = notification_create(
            environment_id=environment.id,
            notification_type="digest",
            user_id=user_id,
            email="q@example.com",
            created_at=created_at,
        )
        for channel in channels:
            event_record(notification_id=n.id, notification_created_at=created_at,
                         channel=channel, kind="sent", source="pipeline")  # fmt: skip
        made.append(n)
    return made


def _count(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_list_runs_a_fixed_number_of_queries(client, tenants, django_assert_max_num_queries):
    mine, _ = tenants
    client.force_login(console_user(mine))
    _notifications(mine, 1)
    few = _count(client, "/admin/logs/notification/")
    _notifications(mine, 30)
    many = _count(client, "/admin/logs/notification/")
    assert few == many
    with django_assert_max_num_queries(LIST_MAX):
        client.get("/admin/logs/notification/", {"q": "q@example.com"})


@pytest.mark.django_db
def test_the_notification_page_runs_a_fixed_number_of_queries(
    client, tenants, django_assert_max_num_queries
):
    mine, _ = tenants
    client.force_login(console_user(mine))
    [small] = _notifications(mine, 1, channels=("in_app",))
    [big] = _notifications(mine, 1, channels=("email", "sms", "call", "in_app"))
    for i in range(20):
        event_record(
            notification_id=big.id,
            channel="email",
            kind="engagement",
            sub_kind="opened",
            source="sandbox",
            provider_event_id=f"open-{i}",
        )
    few = _count(client, f"/admin/logs/notification/{small.id}/change/")
    many = _count(client, f"/admin/logs/notification/{big.id}/change/")
    assert few == many
    with django_assert_max_num_queries(PAGE_MAX):
        client.get(f"/admin/logs/notification/{big.id}/change/")


@pytest.mark.django_db
def test_the_user_timeline_runs_a_fixed_number_of_queries(
    client, tenants, django_assert_max_num_queries
):
    mine, _ = tenants
    client.force_login(console_user(mine))
    url, params = "/admin/logs/notification/user/", {"environment": mine.id, "user": "usr_q"}
    _notifications(mine, 1)
    UserPreferenceFactory(environment=mine, user_id="usr_q", notification_type="a")
    few = _count(client, url, params)
    _notifications(mine, 30)
    for key in "bcdef":
        UserPreferenceFactory(environment=mine, user_id="usr_q", notification_type=key)
    many = _count(client, url, params)
    assert few == many
    with django_assert_max_num_queries(USER_MAX):
        client.get(url, params)


@pytest.mark.django_db
def test_no_console_page_counts_the_table(client, tenants):
    mine, _ = tenants
    client.force_login(console_user(mine))
    [n] = _notifications(mine, 1)
    with CaptureQueriesContext(connection) as queries:
        client.get("/admin/logs/notification/", {"q": "usr_q"})
        client.get("/admin/logs/notification/user/", {"environment": mine.id, "user": "usr_q"})
        client.get(f"/admin/logs/notification/{n.id}/change/")
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert not [q["sql"] for q in queries if " OFFSET " in q["sql"].upper()]
