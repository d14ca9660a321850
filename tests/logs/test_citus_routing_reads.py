"""The read and maintenance paths of the log on a Citus cluster route every statement to one
shard: the console's searches (each filter), its user timeline, notification page, timeline
polling, reveal, resend confirmation and export; the logs API (list with each filter, a
user's list, detail, export as CSV and NDJSON, NotificationAPI's query); retention (the
install purge, an account's shorter retention, content retention); tenant deletion; a user's
erasure; and an insights user series. Each is run for real and every statement it sent to a
log table is EXPLAINed (tests/citus_plans.py): none may run on more than one shard. On plain
PostgreSQL they are skipped: there are no shards to count (tests/logs/test_plans.py reads
those plans there)."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.deletion import environment_purge
from accounts.models import Environment, Membership
from insights.selectors import user_series
from logs.content_retention import environment_content_clear
from logs.erasure import erasure_run
from logs.models import ErasureJob, Notification
from logs.retention import account_retention_purge, retention_purge
from logs.search_filters import Cursor
from tests.citus_plans import citus, multi_shard_statements_of_a_path  # noqa: F401 (fixture)
from tests.console.conftest import bounced_email, console_user
from tests.factories import EnvironmentFactory, MembershipFactory
from tests.logs.api.conftest import SECRET, client_for, make_log
from tests.notifications.factories import NotificationTypeFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("citus")]

LIST = "/admin/logs/notification/"


def _routed(queries) -> dict[str, list[int]]:
    """The captured log statements not routed to one shard."""
    return multi_shard_statements_of_a_path(queries.captured_queries)


@pytest.fixture
def log(settings):
    """Two environments with a bounced email, an SMS that failed and a delivered email each
    (the other environment's rows make the plans choose, not merely find nothing)."""
    settings.LOGS_API_THROTTLE_RATE = "100000/minute"
    environment = EnvironmentFactory(client_secret=SECRET)
    other = EnvironmentFactory()
    for env in (environment, other):
        NotificationTypeFactory(environment=env, key="password_reset")
        bounced_email(env)
        outcomes = {"sms": ("failed", "undelivered"), "email": ("delivered", "")}
        make_log(env, minutes=30, type="password_reset", user_id="usr_alice",
                 email="alice@example.com", number="+14155550100", outcomes=outcomes)  # fmt: skip
    notifications = list(
        Notification.objects.filter(environment=environment).order_by("-created_at", "-id")
    )
    return environment, notifications


def _message_id(notification) -> str:
    return notification.deliveries.exclude(provider_message_id="").first().provider_message_id


# The console's search box (each key it can search as, and its guess) and its filters.
CONSOLE_SEARCHES = {
    "newest": lambda n: {},
    "tracking id": lambda n: {"q": str(n.id), "search_as": "tracking_id"},
    "user id": lambda n: {"q": "usr_alice", "search_as": "user_id"},
    "email": lambda n: {"q": "ALICE@example.com", "search_as": "email"},
    "email prefix": lambda n: {"q": "alic", "search_as": "email_prefix"},
    "number": lambda n: {"q": "(415) 555-0100", "search_as": "number"},
    "provider message id": lambda n: {"q": _message_id(n), "search_as": "provider_message_id"},
    "guessed": lambda n: {"q": "nobody-at-all"},
    "status": lambda n: {"status": "failure"},
    "status success": lambda n: {"status": "success"},
    "type": lambda n: {"type": "password_reset"},
    "channel": lambda n: {"channel": "sms"},
    "event kind": lambda n: {"event": "failed"},
    "event sub-kind": lambda n: {"event": "failed:bounce"},
    "channel and status": lambda n: {"channel": "email", "status": "failure"},
    "channel and event": lambda n: {"channel": "sms", "event": "failed"},
    "channel, status, event and type": lambda n: {
        "channel": "email",
        "status": "success",
        "event": "delivered",
        "type": "password_reset",
    },
    "user and channel": lambda n: {"q": "usr_alice", "search_as": "user_id", "channel": "sms"},
    "dates": lambda n: {
        "date_from": (n.created_at - timedelta(days=1)).date().isoformat(),
        "date_to": n.created_at.date().isoformat(),
    },
    "page two": lambda n: {"after": Cursor(n.created_at, n.id).encode()},
}


@pytest.mark.parametrize("search", CONSOLE_SEARCHES)
def test_a_console_search_runs_on_one_shard(client, log, search):
    environment, notifications = log
    client.force_login(console_user(environment))
    params = {"environment": environment.id, **CONSOLE_SEARCHES[search](notifications[0])}

    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST, params)

    assert response.status_code == 200
    assert _routed(queries) == {}


def test_the_console_user_timeline_and_export_run_on_one_shard(client, log):
    environment, _ = log
    client.force_login(console_user(environment))
    with CaptureQueriesContext(connection) as queries:
        timeline = client.get(f"{LIST}user/", {"environment": environment.id, "user": "usr_alice"})
        export = client.get(f"{LIST}export.csv", {"environment": environment.id, "channel": "sms"})
        body = b"".join(export.streaming_content)

    assert timeline.status_code == 200
    assert export.status_code == 200 and body.count(b"\n") == 2
    assert _routed(queries) == {}


def test_the_console_notification_page_runs_on_one_shard(client, log):
    environment, notifications = log
    client.force_login(console_user(environment, role=Membership.Role.OWNER))
    page = f"{LIST}{notifications[0].id}"
    with CaptureQueriesContext(connection) as queries:
        responses = [
            client.get(f"{page}/change/"),
            client.get(f"{page}/events.json", {"after": 0}),
            client.post(f"{page}/reveal/"),
            client.get(f"{page}/resend/"),
        ]

    assert [response.status_code for response in responses] == [200] * 4
    assert _routed(queries) == {}


def test_a_viewer_of_several_environments_opens_a_notification_on_one_shard(client, log):
    """The console's links name the notification's environment (`?environment=`): the page
    reads that environment alone, not every environment of the viewer at once."""
    environment, notifications = log
    viewer = console_user(environment, role=Membership.Role.OWNER)
    for _ in range(3):
        MembershipFactory(user=viewer, account=EnvironmentFactory().account)
    client.force_login(viewer)
    listing = client.get(LIST, {"environment": environment.id}).content.decode()
    [link] = set(re.findall(rf'href="([^"]*{notifications[0].id}/change/[^"]*)"', listing))
    link = html.unescape(link)

    with CaptureQueriesContext(connection) as queries:
        page = client.get(link)
        polled = client.get(link.replace("/change/", "/events.json") + "&after=0")
        revealed = client.post(link.replace("/change/", "/reveal/"))

    assert [page.status_code, polled.status_code, revealed.status_code] == [200] * 3
    assert _routed(queries) == {}


# The logs API's filters (GET /api/v1/logs and its export take the same ones).
API_FILTERS = {
    "newest": lambda n: {},
    "tracking id": lambda n: {"trackingId": str(n.id)},
    "user id": lambda n: {"userId": "usr_alice"},
    "email": lambda n: {"email": "Alice@Example.com"},
    "email prefix": lambda n: {"emailPrefix": "alic"},
    "number": lambda n: {"number": "415 555 0100"},
    "type": lambda n: {"type": "password_reset"},
    "status": lambda n: {"status": "failure"},
    "channel": lambda n: {"channel": "sms"},
    "two channels": lambda n: {"channel": ["sms", "email"]},
    "event kind": lambda n: {"eventKind": "failed"},
    "event sub-kind": lambda n: {"eventSubKind": "bounce"},
    "provider message id": lambda n: {"providerMessageId": _message_id(n)},
    "channel and status": lambda n: {"channel": "sms", "status": "failure"},
    "channel, event and type": lambda n: {
        "channel": "email",
        "eventKind": "delivered",
        "type": "password_reset",
    },
    "dates": lambda n: {
        "createdFrom": (n.created_at - timedelta(days=1)).isoformat(),
        "createdTo": (n.created_at + timedelta(seconds=1)).isoformat(),
    },
    "page two": lambda n: {"limit": 1},
}


@pytest.mark.parametrize("search", API_FILTERS)
def test_an_api_list_runs_on_one_shard(log, search):
    environment, notifications = log
    api = client_for(environment)
    params = API_FILTERS[search](notifications[0])

    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/logs", params)
        assert response.status_code == 200, response.content
        if response.json()["next"]:
            following = api.get("/api/v1/logs", {**params, "cursor": response.json()["next"]})
            assert following.status_code == 200

    assert response.json()["results"]
    assert _routed(queries) == {}


@pytest.mark.parametrize("file_format", ["csv", "ndjson"])
def test_an_api_export_runs_on_one_shard(log, file_format):
    environment, _ = log
    api = client_for(environment)
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/logs/export", {"format": file_format, "channel": "email"})
        body = b"".join(response.streaming_content)

    assert response.status_code == 200 and body
    assert _routed(queries) == {}


def test_the_api_detail_a_users_list_and_the_query_run_on_one_shard(log):
    environment, notifications = log
    api = client_for(environment)
    with CaptureQueriesContext(connection) as queries:
        responses = [
            api.get(f"/api/v1/logs/{notifications[0].id}"),
            api.get("/api/v1/users/usr_alice/logs"),
            api.post(f"/{environment.client_id}/logs/query", {}, format="json"),
            api.post(
                f"/{environment.client_id}/logs/query",
                {"channelFilter": ["SMS"], "statusFilter": ["FAILURE"], "limit": 1},
                format="json",
            ),
            api.post(
                f"/{environment.client_id}/logs/query",
                {
                    "requestFilter": ['request.user.id="usr_alice"'],
                    "trackingIds": [str(notifications[0].id)],
                },
                format="json",
            ),
        ]

    assert [response.status_code for response in responses] == [200] * len(responses)
    assert _routed(queries) == {}


# The one statement of these paths that is not about one environment: partitions_ensure (run
# by the install purge) moves the rows a day's partition did not exist for yet out of DEFAULT
# into the day's new partition, every environment's at once. DEFAULT holds rows only when a
# day's partition was missing when they were written (the nightly job makes them days
# ahead), so on a healthy install it moves nothing; a statement per environment would first
# need their ids from DEFAULT, itself a read of every shard.
_DEFAULT_MOVE = re.compile(
    r'^WITH moved AS \(DELETE FROM "logs_(notification|delivery|event)_default"'
)


def test_retention_runs_on_one_shard_or_as_ddl(log):
    """The install purge drops whole day partitions (DDL, not planned); an account's shorter
    retention and content retention delete and update environment by environment. The rows
    the fixture wrote to DEFAULT (no partition for yesterday in the test database) are moved
    into their day first, by the one statement per table that spans environments."""
    environment, _ = log
    account = environment.account
    account.retention_days = 1
    account.save()
    Environment.objects.filter(pk=environment.pk).update(content_retention_days=1)
    environment.refresh_from_db()
    later = timezone.now() + timedelta(days=3)

    with CaptureQueriesContext(connection) as queries:
        retention_purge(retention_days=400, now=later)
        account_retention_purge(account=account, now=later)
        run = environment_content_clear(environment=environment, now=later)

    assert run.cleared == 0  # the account's retention removed them first
    spanning = _routed(queries)
    assert [sql for sql in spanning if not _DEFAULT_MOVE.match(sql)] == []


def test_content_retention_runs_on_one_shard(log):
    environment, notifications = log
    Environment.objects.filter(pk=environment.pk).update(content_retention_days=1)
    environment.refresh_from_db()

    with CaptureQueriesContext(connection) as queries:
        run = environment_content_clear(
            environment=environment, now=timezone.now() + timedelta(days=3), batch_size=1
        )

    assert run.cleared == len(notifications)
    assert _routed(queries) == {}


def test_a_tenant_purge_runs_on_one_shard(log):
    environment, _ = log
    Environment.all_objects.filter(pk=environment.pk).update(deleting_at=timezone.now())

    with CaptureQueriesContext(connection) as queries:
        assert environment_purge(environment_id=environment.id, batch_size=1)

    assert not Environment.all_objects.filter(pk=environment.pk).exists()
    assert _routed(queries) == {}


def test_a_users_erasure_runs_on_one_shard(log):
    environment, _ = log
    job = ErasureJob.objects.create(environment=environment, user_id="usr_alice", requested_by="t")

    with CaptureQueriesContext(connection) as queries:
        done = erasure_run(job_id=job.pk, batch_size=1)

    assert done.state == ErasureJob.State.DONE
    assert done.counts["logs_notification"] == 2
    assert _routed(queries) == {}


def test_an_insights_user_series_runs_on_one_shard(log):
    environment, _ = log
    end = datetime.now(UTC) + timedelta(hours=1)
    with CaptureQueriesContext(connection) as queries:
        user_series(
            environment=environment,
            user_id="usr_alice",
            start=end - timedelta(days=3),
            end=end,
            granularity="hour",
        )

    assert _routed(queries) == {}
