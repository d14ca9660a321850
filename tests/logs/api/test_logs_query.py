"""NotificationAPI's POST /{clientId}/logs/query."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from logs.models import Notification
from tests.logs.api.conftest import T0, client_for, make_log

pytestmark = pytest.mark.django_db


def query(api, environment, body: dict):
    return api.post(f"/{environment.client_id}/logs/query", body, format="json")


def tracking_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [log["trackingId"] for log in response.json()["logs"]]


@pytest.fixture
def logs(environment):
    return [
        make_log(environment, minutes=1, type="welcome", user_id="u-1",
                 merge_tags={"plan": {"name": "Pro", "seats": 5}, "tags": ["vip"]},
                 outcomes={"email": ("delivered", "")}),
        make_log(environment, minutes=2, type="order_tracking", user_id="u-2",
                 email="sam@gmail.com",
                 merge_tags={"item": "Krabby Patty Burger", "qty": 2,
                             "products": [{"sku": {"title": "Kelp Fries"}}]},
                 outcomes={"email": ("failed", "bounce"), "sms": ("delivered", "")}),
        make_log(environment, minutes=3, type="order_tracking", user_id="u-1",
                 merge_tags={"item": "Coral Bits", "qty": 7, "gift": True},
                 outcomes={"sms": ("failed", "undelivered")}),
        make_log(environment, minutes=4, type="welcome", user_id="u-3",
                 merge_tags={"plan": {"name": "Free", "seats": 1}, "coupon": None}),
    ]  # fmt: skip


def bulk_logs(environment, count: int, request=lambda n: {}) -> None:
    """`count` bare notifications a second apart (no events: quicker than make_log)."""
    Notification.objects.bulk_create(
        Notification(
            id=uuid.uuid4(), environment=environment, notification_type="bulk",
            user_id=f"u{n}", request=request(n), created_at=T0 + timedelta(seconds=n),
            updated_at=T0,
        )
        for n in range(count)
    )  # fmt: skip


def expect(logs, *positions):
    return [str(logs[p].id) for p in positions]


def ms(moment) -> int:
    return int(moment.timestamp() * 1000)


@pytest.mark.parametrize(
    ("body", "positions"),
    [
        ({}, [3, 2, 1, 0]),
        ({"notificationFilter": ["welcome"]}, [3, 0]),
        ({"userFilter": ["u-1", "u-3"]}, [3, 2, 0]),
        ({"channelFilter": ["SMS"]}, [2, 1]),
        ({"channelFilter": ["EMAIL", "CALL"]}, [1, 0]),
        ({"statusFilter": ["FAILURE"]}, [2, 1]),
        ({"statusFilter": ["success", "Received"]}, [3, 0]),
        ({"requestFilter": ['request.mergeTags.item="Krabby Patty Burger"']}, [1]),
        ({"requestFilter": ["request.mergeTags.plan.name = Pro"]}, [0]),
        ({"requestFilter": ["request.mergeTags.plan.seats >= 2"]}, [0]),
        ({"requestFilter": ["request.mergeTags.products[0].sku.title = 'Kelp*'"]}, [1]),
        ({"requestFilter": ['request.user.email = "*@gmail.com"']}, [1]),
        ({"requestFilter": ["request.mergeTags.coupon IS NULL"]}, [3]),
        ({"requestFilter": ["request.mergeTags.gift IS TRUE"]}, [2]),
        ({"requestFilter": ["request.mergeTags.item NOT EXISTS"]}, [3, 0]),
        ({"requestFilter": ["request.mergeTags.tags = vip", "request.mergeTags.qty > 5"]}, [2, 0]),
        (
            {"requestFilter": ["(request.mergeTags.qty < 3 || request.mergeTags.gift IS TRUE) "
                               "&& $.request.notificationId = order_tracking"]},
            [2, 1],
        ),
        ({"notificationFilter": ["order_tracking"], "userFilter": ["u-1"]}, [2]),
        # A channel's status is its own: u-2's email failed, its SMS was delivered.
        ({"channelFilter": ["SMS"], "statusFilter": ["failure"], "userFilter": ["u-2"]}, []),
        ({"channelFilter": ["EMAIL"], "statusFilter": ["failure"], "userFilter": ["u-2"]}, [1]),
        ({"channelFilter": ["SMS"], "statusFilter": ["failure"]}, [2]),
        ({"userFilter": ["u-1"], "requestFilter": ["request.mergeTags.item EXISTS"]}, [2]),
    ],
)  # fmt: skip
def test_each_filter_alone_and_combined(api, environment, logs, body, positions):
    assert tracking_ids(query(api, environment, body)) == expect(logs, *positions)


def test_tracking_ids_dates_and_env_id(api, environment, logs):
    body = {"trackingIds": [str(logs[0].id), str(logs[2].id)]}
    assert tracking_ids(query(api, environment, body)) == expect(logs, 2, 0)
    # endTime is inclusive, in epoch milliseconds.
    dates = {"startTime": ms(logs[1].created_at), "endTime": ms(logs[2].created_at)}
    assert tracking_ids(query(api, environment, {"dateRangeFilter": dates})) == expect(logs, 2, 1)
    body = {"envIdFilter": [environment.client_id, "someoneelse0000000000000000"]}
    assert len(tracking_ids(query(api, environment, body))) == 4
    body = {"envIdFilter": ["someoneelse0000000000000000"]}
    assert tracking_ids(query(api, environment, body)) == []
    body = {"requestFilter": [f'trackingId = "{str(logs[3].id).upper()}"']}
    assert tracking_ids(query(api, environment, body)) == expect(logs, 3)


def test_a_record_has_the_documented_fields(api, environment, logs):
    body = {"trackingIds": [str(logs[1].id)]}
    (record,) = query(api, environment, body).json()["logs"]
    assert record["trackingId"] == str(logs[1].id)
    assert record["notificationId"] == "order_tracking"
    assert record["userId"] == "u-2"
    assert record["envId"] == environment.client_id
    assert record["channels"] == ["EMAIL", "SMS"]
    assert record["status"] == "failure"
    assert record["request"]["mergeTags"]["item"] == "Krabby Patty Burger"
    assert record["createdAt"] == ms(logs[1].created_at)
    events = [(e["type"], e["subType"], e["channel"]) for e in record["events"]]
    assert events[0] == ("Received", None, None)
    assert ("Failed", "Bounce", "EMAIL") in events
    assert ("Delivered", None, "SMS") in events
    assert all(isinstance(e["time"], int) for e in record["events"])


def test_next_token_pages_through_everything_once(api, environment):
    made = [make_log(environment, minutes=n / 10, merge_tags={"n": n}) for n in range(5)]
    for body in [{}, {"requestFilter": ["request.mergeTags.n >= 0"]}]:
        seen, token = [], None
        for _ in range(10):
            page = query(
                api, environment, {**body, "limit": 2, **({"nextToken": token} if token else {})}
            )
            seen += tracking_ids(page)
            token = page.json().get("nextToken")
            if token is None:
                break
        assert seen == [str(n.id) for n in reversed(made)], body


def test_the_default_page_is_100_logs_and_a_tampered_next_token_is_a_400(api, environment):
    bulk_logs(environment, 101)
    first = query(api, environment, {})
    assert len(tracking_ids(first)) == 100
    token = first.json()["nextToken"]
    rest = query(api, environment, {"nextToken": token})
    assert len(tracking_ids(rest)) == 1 and "nextToken" not in rest.json()
    value, signature = token.rsplit(":", 1)
    tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB") + ":" + signature
    response = query(api, environment, {"nextToken": tampered})
    assert response.status_code == 400
    assert response.json()["message"].startswith("nextToken: The page token is not valid")


def test_a_request_filter_is_evaluated_by_postgresql_a_page_at_a_time(api, environment, logs):
    # The jsonpath reaches the database and only a page (plus one row) comes back: no rows
    # are loaded to be filtered in Python.
    body = {"requestFilter": ["request.mergeTags.qty >= 2"], "limit": 1}
    with CaptureQueriesContext(connection) as queries:
        assert tracking_ids(query(api, environment, body)) == expect(logs, 2)
    (page,) = [q["sql"] for q in queries if "@@" in q["sql"]]
    assert """'$."mergeTags"."qty" >= 2'::jsonpath""" in page
    assert page.rstrip().endswith("LIMIT 2")


def test_query_count_does_not_grow_with_the_page(api, environment):
    for n in range(20):
        make_log(environment, minutes=n, outcomes={"email": ("delivered", "")})
    query(api, environment, {"limit": 1})  # the credentials, cached from here on (hotcache)
    with CaptureQueriesContext(connection) as small:
        assert len(tracking_ids(query(api, environment, {"limit": 2}))) == 2
    with CaptureQueriesContext(connection) as large:
        assert len(tracking_ids(query(api, environment, {"limit": 20}))) == 20
    assert len(large) == len(small) <= 5


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"statusFilter": ["DONE"]}, "statusFilter[0]:"),
        ({"statusFilter": "SUCCESS"}, "statusFilter:"),
        ({"channelFilter": ["FAX"]}, "channelFilter[0]:"),
        ({"userFilter": [1, {"a": 1}]}, "userFilter[1]:"),
        ({"trackingIds": ["nope"]}, "trackingIds[0]:"),
        ({"dateRangeFilter": {"startTime": "monday"}}, "dateRangeFilter.startTime:"),
        ({"dateRangeFilter": {"startTime": 10**20}}, "dateRangeFilter.startTime:"),
        (
            {"dateRangeFilter": {"startTime": 2000, "endTime": 1000}},
            "dateRangeFilter: startTime is after",
        ),
        ({"dateRangeFilter": []}, "dateRangeFilter:"),
        ({"requestFilter": ["request.mergeTags.item ="]}, "requestFilter[0]: expected a value"),
        ({"requestFilter": ["mergeTags.item = 1"]}, "requestFilter[0]: unknown property"),
        ({"customFilter": "fields @message"}, "customFilter: customFilter is not supported"),
        ({"limit": 1001}, "limit:"),
        ({"limit": True}, "limit:"),
        ({"nextToken": "tampered"}, "nextToken: The page token is not valid"),
        ({"statusFilters": ["SUCCESS"]}, "statusFilters: not a query_logs field"),
        ({"userFilter": ["a\x00b"]}, "userFilter[0]:"),
        # Each filter of the wrong type.
        ({"notificationFilter": "welcome"}, "notificationFilter:"),
        ({"notificationFilter": [{"id": "welcome"}]}, "notificationFilter[0]:"),
        ({"channelFilter": "EMAIL"}, "channelFilter:"),
        ({"userFilter": "u-1"}, "userFilter:"),
        ({"trackingIds": "nope"}, "trackingIds:"),
        ({"envIdFilter": "abc"}, "envIdFilter:"),
        ({"envIdFilter": [["abc"]]}, "envIdFilter[0]:"),
        ({"requestFilter": "request.mergeTags.item = 1"}, "requestFilter:"),
        ({"requestFilter": [{"item": 1}]}, "requestFilter[0]:"),
        ({"dateRangeFilter": "today"}, "dateRangeFilter:"),
        ({"dateRangeFilter": {"endTime": "now"}}, "dateRangeFilter.endTime:"),
        ({"dateRangeFilter": {"startTime": 1.5}}, "dateRangeFilter.startTime:"),
        ({"dateRangeFilter": {"startTime": -1}}, "dateRangeFilter.startTime:"),
        ({"dateRangeFilter": {"start": 1}}, "dateRangeFilter.start:"),
        ({"limit": "ten"}, "limit:"),
        ({"nextToken": ["x"]}, "nextToken:"),
        ({"customFilter": 5}, "customFilter:"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(api, environment, body, says):
    response = query(api, environment, body)
    assert response.status_code == 400, response.content
    assert response.json()["message"].startswith(says), response.json()


@pytest.mark.parametrize(
    "raw",
    [
        b"[1, 2]",
        b'"text"',
        b"{not json",
        b"null",
        b"[" * 100_000,  # deeper than Python's JSON decoder goes
        # A lone surrogate (valid JSON, not valid text) in a value and in a requestFilter.
        b'{"userFilter": ["x\\ud800"]}',
        b'{"requestFilter": ["request.a = \'x\\ud800\'"]}',
    ],
)
def test_a_body_that_is_not_an_object_is_a_400(api, environment, raw):
    response = api.post(
        f"/{environment.client_id}/logs/query", raw, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["message"]


def test_the_date_range_cannot_exceed_the_maximum(api, environment, settings):
    settings.LOGS_API_MAX_DATE_RANGE_DAYS = 1
    start = T0 - timedelta(days=2)
    body = {"dateRangeFilter": {"startTime": ms(start), "endTime": ms(T0)}}
    response = query(api, environment, body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("dateRangeFilter: The date range is longer")


def test_another_environment_never_sees_these_logs(environment, other_environment, logs):
    other = client_for(other_environment, other_environment.client_secret())
    theirs = make_log(other_environment, user_id="u-1", merge_tags={"item": "Krabby Patty Burger"})
    assert tracking_ids(query(other, other_environment, {})) == [str(theirs.id)]
    for body in [
        {"trackingIds": [str(logs[0].id)]},
        {"userFilter": ["u-2"]},
        {"envIdFilter": [environment.client_id]},
        {"requestFilter": [f'trackingId = "{logs[0].id}"']},
        {"requestFilter": ['request.mergeTags.item="Coral Bits"']},
    ]:
        assert tracking_ids(query(other, other_environment, body)) == [], body
    # A nextToken of this environment is refused by the other.
    token = query(client_for(environment), environment, {"limit": 1}).json()["nextToken"]
    response = query(other, other_environment, {"nextToken": token})
    assert response.status_code == 400
    assert response.json()["message"].startswith("nextToken: The page token is not valid")
    # Its credentials with this environment's client id in the URL are refused.
    response = other.post(f"/{environment.client_id}/logs/query", {}, format="json")
    assert response.status_code == 401
    assert "another environment" in response.json()["message"]


def test_a_request_filter_search_past_the_time_limit_is_a_400(api, environment, settings):
    bulk_logs(environment, 20_000, request=lambda n: {"mergeTags": {"code": f"code-{n:06d}"}})
    body = {"requestFilter": ['request.mergeTags.code = "*-nothing"']}
    settings.LOGS_API_QUERY_TIMEOUT_MS = 1
    response = query(api, environment, body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("requestFilter: the search took too long")
    settings.LOGS_API_QUERY_TIMEOUT_MS = 60_000
    assert tracking_ids(query(api, environment, body)) == []
