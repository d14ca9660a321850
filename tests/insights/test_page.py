"""The insights page: one environment's rollups, the viewer's environments only, bad filters
answered with a message, and never a query on the log (except for one user)."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from insights.services import rollups_fold
from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory
from tests.insights.helpers import notification_with

pytestmark = pytest.mark.django_db
PAGE = "/admin/insights/hourlyrollup/"


def _support(client, environment):
    user = UserFactory(username="helpdesk")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="logs", codename__startswith="view_")
    )
    MembershipFactory(user=user, account=environment.account)
    client.force_login(user)
    return client


def _totals(body: str) -> dict[str, int]:
    return {
        name: int(value) for name, value in re.findall(r'<td data-count="(\w+)">(\d+)</td>', body)
    }


@pytest.fixture
def traffic():
    mine, theirs = EnvironmentFactory(), EnvironmentFactory()
    notification_with(
        mine, [("sent", "email"), ("delivered", "email"), ("engagement", "email", "opened")]
    )
    notification_with(mine, [("sent", "email"), ("failed", "email", "bounce")], user_id="usr_b")
    notification_with(mine, [("ignored", "sms", "user_preference")], type_="password_reset")
    notification_with(theirs, [("sent", "email")], type_="secret_type")
    rollups_fold()
    return mine, theirs


def test_the_page_shows_the_environments_counts_from_rollups_only(admin_client, traffic):
    mine, _ = traffic
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(PAGE, {"environment": mine.id, "period": "24h"})

    assert response.status_code == 200
    body = response.content.decode()
    assert _totals(body) == {
        "received": 3, "sent": 2, "delivered": 1, "failed": 1, "ignored": 1, "engaged": 1,
    }  # fmt: skip
    assert body.count('class="pygal-chart"') == 3  # counts, rates, breakdown
    assert "password_reset" in body and "secret_type" not in body
    assert "kozea.github.io" not in body  # no CDN script
    assert not [q["sql"] for q in queries.captured_queries if "logs_" in q["sql"]]


def test_the_charts_narrow_to_one_type_channel_and_template(admin_client, traffic):
    mine, _ = traffic
    notification_with(mine, [("sent", "email"), ("delivered", "email")], template="winter")
    rollups_fold()
    page = {"environment": mine.id, "period": "24h"}

    with CaptureQueriesContext(connection) as queries:
        email = admin_client.get(PAGE, page | {"type": "order_tracking", "channel": "email"})
    body = email.content.decode()
    assert _totals(body) == {
        "received": 0, "sent": 3, "delivered": 2, "failed": 1, "ignored": 0, "engaged": 1,
    }  # fmt: skip
    assert "type order_tracking, channel email" in body
    assert "Received belongs to the request" in body
    assert not [q["sql"] for q in queries.captured_queries if "logs_" in q["sql"]]

    reset = admin_client.get(PAGE, page | {"type": "password_reset"})
    assert _totals(reset.content.decode()) == {
        "received": 1, "sent": 0, "delivered": 0, "failed": 0, "ignored": 1, "engaged": 0,
    }  # fmt: skip
    winter = admin_client.get(PAGE, page | {"template": "winter"})
    assert _totals(winter.content.decode()) == {
        "received": 1, "sent": 1, "delivered": 1, "failed": 0, "ignored": 0, "engaged": 0,
    }  # fmt: skip
    one_user = admin_client.get(PAGE, page | {"user_id": "usr_b", "channel": "sms"})
    assert set(_totals(one_user.content.decode()).values()) == {0}


def test_one_users_counts_come_from_the_log(admin_client, traffic):
    mine, _ = traffic
    response = admin_client.get(PAGE, {"environment": mine.id, "period": "24h", "user_id": "usr_b"})

    assert response.status_code == 200
    assert _totals(response.content.decode()) == {
        "received": 1, "sent": 1, "delivered": 0, "failed": 1, "ignored": 0, "engaged": 0,
    }  # fmt: skip


def test_support_sees_only_their_environments(client, traffic):
    mine, theirs = traffic
    support = _support(client, mine)

    own = support.get(PAGE, {"environment": mine.id})
    other = support.get(PAGE, {"environment": theirs.id})

    assert own.status_code == 200
    assert theirs.name not in own.content.decode() or theirs.name == mine.name
    assert other.status_code == 404
    assert "secret_type" not in other.content.decode()


def test_hourly_points_over_a_quarter_are_refused_with_a_message(admin_client, traffic):
    mine, _ = traffic
    response = admin_client.get(
        PAGE, {"environment": mine.id, "period": "90d", "granularity": "hour"}
    )
    assert response.status_code == 400
    assert "Per hour is for periods up to 7 days" in response.content.decode()


def test_a_user_without_log_permission_does_not_see_insights(client, traffic):
    mine, _ = traffic
    user = UserFactory(username="nobody")
    MembershipFactory(user=user, account=mine.account)
    client.force_login(user)
    assert client.get(PAGE).status_code in (403, 404)


def test_the_page_reads_a_bounded_number_of_queries(
    admin_client, traffic, django_assert_max_num_queries
):
    mine, _ = traffic
    with django_assert_max_num_queries(8):
        admin_client.get(PAGE, {"environment": mine.id, "period": "30d", "by": "channel"})
