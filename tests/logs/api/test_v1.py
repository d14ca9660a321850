import base64
import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.logs.api.conftest import (
    T0,
    bearer_client,
    client_for,
    make_log,
    read_key,
)

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["trackingId"] for row in response.json()["results"]]


@pytest.fixture
def logs(environment):
    """Five notifications, oldest first, covering each filter's values."""
    return [
        make_log(environment, minutes=1, type="welcome", user_id="u-1",
                 email="Ada.Lovelace@Example.com", number="+14155550101",
                 outcomes={"email": ("delivered", "")}),
        make_log(environment, minutes=2, type="password_reset", user_id="u-2",
                 email="grace@example.com", outcomes={"email": ("failed", "bounce")}),
        make_log(environment, minutes=3, type="order_tracking", user_id="u-1",
                 number="+14155550101", outcomes={"sms": ("failed", "undelivered")}),
        make_log(environment, minutes=4, type="order_tracking", user_id="u-3",
                 number="+14155550103", outcomes={"call": ("delivered", "busy")}),
        make_log(environment, minutes=5, type="welcome", user_id="u-4"),
    ]  # fmt: skip


def expect(logs, *positions) -> list[str]:
    return [str(logs[p].id) for p in positions]


@pytest.mark.parametrize(
    ("query", "positions"),
    [
        ("", [4, 3, 2, 1, 0]),
        ("status=failure", [2, 1]),
        ("status=SUCCESS", [3, 0]),
        ("status=failure&status=received", [4, 2, 1]),
        ("type=welcome", [4, 0]),
        ("userId=u-1", [2, 0]),
        ("userId=u-1&userId=u-3", [3, 2, 0]),
        ("email=ADA.lovelace@example.com", [0]),
        ("emailPrefix=gra", [1]),
        ("number=(415) 555-0101", [2, 0]),
        ("number=4155550103", [3]),
        ("channel=email", [1, 0]),
        ("channel=sms&channel=call", [3, 2]),
        ("eventKind=failed", [2, 1]),
        ("eventSubKind=bounce", [1]),
        ("eventKind=delivered&eventSubKind=busy", [3]),
        ("type=order_tracking&status=failure", [2]),
        ("userId=u-1&channel=sms", [2]),
    ],
)
def test_each_filter_selects_exactly_its_notifications_newest_first(api, logs, query, positions):
    assert ids(api.get(f"/api/v1/logs?{query}")) == expect(logs, *positions)


def test_created_range_and_tracking_id_and_provider_message_id(api, logs):
    start = (T0 + timedelta(minutes=2)).isoformat()
    end = (T0 + timedelta(minutes=4)).isoformat()
    assert ids(api.get("/api/v1/logs", {"createdFrom": start, "createdTo": end})) == expect(
        logs, 2, 1
    )
    both = {"trackingId": [str(logs[0].id), str(logs[3].id)]}
    assert ids(api.get("/api/v1/logs", both)) == expect(logs, 3, 0)
    message_id = f"msg-{logs[1].id.hex[:12]}-email"
    assert ids(api.get("/api/v1/logs", {"providerMessageId": message_id})) == expect(logs, 1)


def test_list_rows_carry_their_deliveries(api, logs):
    row = api.get("/api/v1/logs", {"trackingId": str(logs[1].id)}).json()["results"][0]
    assert row["type"] == "password_reset"
    assert row["status"] == "failure"
    assert row["email"] == "grace@example.com"
    assert row["deliveries"] == [{"channel": "email", "state": "failed", "stateDetail": "bounce"}]


def test_cursor_pages_through_every_row_once_with_link_headers(api, environment):
    made = [make_log(environment, minutes=n / 10) for n in range(7)]
    expected = [str(n.id) for n in reversed(made)]
    seen, url, pages = [], "/api/v1/logs?limit=3&userId=user-1", 0
    while url:
        response = api.get(url)
        seen += ids(response)
        pages += 1
        body = response.json()
        if body["next"]:
            link = response["Link"]
            assert link.endswith('>; rel="next"') and "userId=user-1" in link
            url = link[1 : link.index(">")]
            assert f"cursor={body['next']}" in url.replace("%3A", ":")
        else:
            assert "Link" not in response
            url = None
    assert seen == expected
    assert pages == 3


def test_list_runs_a_fixed_number_of_queries_whatever_the_page_size(api, environment):
    for n in range(30):
        make_log(environment, minutes=n, outcomes={"email": ("delivered", "")})
    api.get("/api/v1/logs?limit=1")  # the credentials, cached from here on (hotcache)
    with CaptureQueriesContext(connection) as small:
        assert len(ids(api.get("/api/v1/logs?limit=2"))) == 2
    with CaptureQueriesContext(connection) as large:
        assert len(ids(api.get("/api/v1/logs?limit=30"))) == 30
    assert len(large) == len(small) <= 3  # page, deliveries (+ a cache miss's credentials)


def test_user_logs_are_the_users_only(api, logs):
    assert ids(api.get("/api/v1/users/u-1/logs")) == expect(logs, 2, 0)
    assert ids(api.get("/api/v1/users/u-1/logs?channel=sms")) == expect(logs, 2)


@pytest.mark.parametrize("user_id", ["a%00b", "x" * 256])
def test_a_path_user_id_the_parameter_would_refuse_is_a_400(api, user_id):
    response = api.get(f"/api/v1/users/{user_id}/logs")
    assert response.status_code == 400
    assert response.json()["message"].startswith("userId: ")


def test_user_id_with_a_slash_or_a_line_break_is_read_from_the_path(api, environment):
    log = make_log(environment, user_id="team/7")
    assert ids(api.get("/api/v1/users/team%2F7/logs")) == [str(log.id)]
    log = make_log(environment, user_id="two\nlines")
    assert ids(api.get("/api/v1/users/two%0Alines/logs")) == [str(log.id)]


def test_detail_has_deliveries_with_content_and_a_labelled_timeline(api, logs):
    response = api.get(f"/api/v1/logs/{logs[1].id}")
    assert response.status_code == 200
    body = response.json()
    assert body["trackingId"] == str(logs[1].id)
    assert body["request"]["user"]["id"] == "u-2"
    (delivery,) = body["deliveries"]
    assert delivery["subject"] == "Subject for u-2"
    assert delivery["text"] == "Body for u-2"
    assert delivery["state"] == "failed"
    assert [e["label"] for e in body["timeline"]] == ["Received", "Sent", "Failed - Bounce"]


@pytest.mark.parametrize("tracking_id", ["not-a-uuid", "0b8e5a53-4a9c-4f4e-9a57-1d2f3c4b5a6e"])
def test_unknown_tracking_id_is_404(api, tracking_id):
    response = api.get(f"/api/v1/logs/{tracking_id}")
    assert response.status_code == 404
    assert "tracking id" in response.json()["message"]


def test_export_ndjson_streams_every_match(api, logs):
    response = api.get("/api/v1/logs/export?format=ndjson&status=failure")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [r["trackingId"] for r in rows] == expect(logs, 2, 1)
    assert rows[0]["channels"] == ["SMS"]
    assert rows[1]["email"] == "grace@example.com"


def test_export_csv_has_a_header_and_one_line_a_notification(api, logs):
    response = api.get("/api/v1/logs/export", {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="logs.csv"' in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["trackingId"] for r in rows] == expect(logs, 4, 3, 2, 1, 0)
    assert rows[3]["channels"] == "EMAIL"


def _transaction_open(django_connection) -> bool:
    import psycopg

    status = django_connection.connection.info.transaction_status
    return status != psycopg.pq.TransactionStatus.IDLE


# Transactional: the export runs as in production, outside any test transaction, so what it
# leaves open between two reads of its client is visible.
@pytest.mark.django_db(transaction=True)
def test_an_export_holds_no_transaction_or_cursor_while_its_client_reads(api, environment):
    """A client reading slowly must not keep a transaction open (it holds back vacuum and
    makes retention's DETACH give way) nor a server-side cursor (a pooler in transaction
    mode cannot keep one): the rows are read in keyset chunks, each its own query."""
    made = {str(make_log(environment, minutes=n / 100).id) for n in range(1200)}
    response = api.get("/api/v1/logs/export?format=ndjson")
    chunks = iter(response.streaming_content)
    first = next(chunks)  # 500 rows: the client pauses here, mid-export
    assert not _transaction_open(connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors")
        assert cursor.fetchone()[0] == 0
    lines = (first + b"".join(chunks)).splitlines()
    assert {json.loads(line)["trackingId"] for line in lines} == made
    assert len(lines) == len(made)


def test_export_chunks_follow_one_another_without_gaps_or_repeats(environment):
    """Keyset chunks of 7 over rows sharing their created_at: every row once, newest
    first, ties broken by id as the list orders them."""
    from logs.api.search import export_rows
    from logs.search_filters import NotificationFilters

    made = [make_log(environment, minutes=n // 5) for n in range(23)]  # 5 per minute
    rows = list(
        export_rows(environment_id=environment.id, filters=NotificationFilters(), chunk_size=7)
    )
    expected = sorted(made, key=lambda n: (n.created_at, n.id), reverse=True)
    assert [row[0] for row in rows] == [n.id for n in expected]


# -- bad input ---------------------------------------------------------------------------------


BAD_QUERIES = [
    ("status=sucess", "status"),
    ("channel=fax", "channel"),
    ("eventKind=exploded", "eventKind"),
    ("eventSubKind=nope", "eventSubKind"),
    ("trackingId=123", "trackingId"),
    ("limit=1001", "limit"),
    ("limit=0", "limit"),
    ("limit=ten", "limit"),
    ("createdFrom=yesterday", "createdFrom"),
    ("emailPrefix=ab", "emailPrefix"),
    ("number=12", "number"),
    ("cursor=garbage", "cursor"),
    ("stauts=failure", "stauts"),
    ("userId=a%00b", "userId"),
    ("format=csv", "format"),  # only the export takes a format
    ("email=", "email"),
    ("status=failure&status=", "status"),
    ("createdTo=tomorrow", "createdTo"),
    ("createdFrom=2026-13-01T00:00:00Z", "createdFrom"),
    ("number=not-a-number", "number"),
    ("type=" + "t" * 101, "type"),
    ("providerMessageId=" + "m" * 256, "providerMessageId"),
    ("email=" + "e" * 321, "email"),
    ("limit=1.5", "limit"),
]
# The filters the export and a user's list share with the list (not its pages or its userId).
BAD_FILTERS = [(q, n) for q, n in BAD_QUERIES if n not in ("limit", "cursor", "format", "userId")]


@pytest.mark.parametrize(("query", "names"), BAD_QUERIES)
def test_bad_input_is_a_400_naming_the_field(api, query, names):
    response = api.get(f"/api/v1/logs?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["message"].startswith(f"{names}"), response.json()


@pytest.mark.parametrize(("query", "names"), BAD_FILTERS)
@pytest.mark.parametrize("path", ["/api/v1/logs/export", "/api/v1/users/u-1/logs"])
def test_the_export_and_a_users_list_refuse_the_same_bad_filters(api, path, query, names):
    response = api.get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["message"].startswith(f"{names}"), response.json()


def test_reversed_date_range_is_a_400(api):
    response = api.get(
        "/api/v1/logs",
        {"createdFrom": T0.isoformat(), "createdTo": (T0 - timedelta(hours=1)).isoformat()},
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("createdTo: The date range is empty")


def test_a_date_range_over_the_maximum_is_a_400(api, settings):
    settings.LOGS_API_MAX_DATE_RANGE_DAYS = 2
    start = T0 - timedelta(days=3)
    response = api.get("/api/v1/logs", {"createdFrom": start.isoformat()})
    assert response.status_code == 400
    assert response.json()["message"].startswith("createdFrom: The date range is longer than 2")
    within = {
        "createdFrom": start.isoformat(),
        "createdTo": (start + timedelta(days=2)).isoformat(),
    }
    assert api.get("/api/v1/logs", within).status_code == 200
    export = api.get("/api/v1/logs/export", {"createdFrom": start.isoformat()})
    assert export.status_code == 400


def test_tampered_cursor_is_a_400(api, environment):
    for n in range(3):
        make_log(environment, minutes=n)
    token = api.get("/api/v1/logs?limit=1").json()["next"]
    value, signature = token.rsplit(":", 1)
    tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB") + ":" + signature
    response = api.get("/api/v1/logs", {"limit": 1, "cursor": tampered})
    assert response.status_code == 400
    assert response.json()["message"].startswith("cursor: The page token is not valid")
    assert api.get("/api/v1/logs", {"limit": 1, "cursor": token}).status_code == 200


def test_export_format_must_be_csv_or_ndjson(api):
    response = api.get("/api/v1/logs/export?format=xml")
    assert response.status_code == 400
    assert response.json()["message"].startswith("format:")


# -- credentials, scope, tenants, throttling ----------------------------------------------------


def test_without_credentials_is_401(logs):
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/logs")
    assert response.status_code == 401
    assert "Authorization" in response.json()["message"]


def test_a_key_without_the_read_scope_is_403(environment, logs):
    key = read_key(environment, scopes=("send",))
    response = bearer_client(key.plain).get("/api/v1/logs")
    assert response.status_code == 403
    assert "'read' scope" in response.json()["message"]


def test_a_read_key_reads(environment, logs):
    key = read_key(environment)
    assert len(ids(bearer_client(key.plain).get("/api/v1/logs"))) == 5


def test_another_environment_sees_none_of_these_logs(logs, other_environment):
    # Theirs matches every filter below but a tracking id and a provider message id; each
    # filter selects some of user u-1's logs here.
    theirs = make_log(other_environment, type="welcome", user_id="u-1",
                      email="Ada.Lovelace@Example.com", number="+14155550101",
                      outcomes={"email": ("failed", "bounce"),
                                "sms": ("failed", "undelivered")})  # fmt: skip
    mine = client_for(logs[0].environment)
    other = client_for(other_environment, secret=other_environment_secret(other_environment))
    assert ids(other.get("/api/v1/logs")) == [str(theirs.id)]
    ours = {str(log.id) for log in logs}
    window = f"createdFrom={T0.isoformat()}&createdTo={(T0 + timedelta(hours=1)).isoformat()}"
    for query in [
        f"trackingId={logs[0].id}",
        f"providerMessageId=msg-{logs[0].id.hex[:12]}-email",
        "userId=u-1",
        "email=ada.lovelace@example.com",
        "emailPrefix=ada",
        "number=4155550101",
        "type=welcome",
        "status=failure",
        "channel=email",
        "eventKind=failed",
        "eventSubKind=undelivered",
        window.replace("+", "%2B"),
    ]:
        for path in ["/api/v1/logs", "/api/v1/users/u-1/logs", "/api/v1/logs/export"]:
            if path.startswith("/api/v1/users/") and query.startswith("userId"):
                continue
            # The search finds some of ours for our credential, none for theirs.
            assert ours & set(_found(mine, path, query)), (path, query)
            assert not ours & set(_found(other, path, query)), (path, query)
    assert other.get(f"/api/v1/logs/{logs[0].id}").status_code == 404
    # A cursor of one environment is refused by another.
    make_log(other_environment, user_id="u-9")
    token = mine.get("/api/v1/logs?limit=1").json()["next"]
    assert other.get("/api/v1/logs", {"cursor": token}).status_code == 400


def _found(client, path: str, query: str) -> list[str]:
    response = client.get(f"{path}?{query}")
    if not path.endswith("/export"):
        return ids(response)
    assert response.status_code == 200, response.content
    lines = b"".join(response.streaming_content).splitlines()
    return [json.loads(line)["trackingId"] for line in lines]


def other_environment_secret(environment) -> str:
    return environment.client_secret()


def test_throttle_answers_429_with_retry_after_per_credential(settings, environment, logs):
    settings.LOGS_API_THROTTLE_RATE = "3/minute"
    client = client_for(environment)
    assert [client.get("/api/v1/logs").status_code for _ in range(3)] == [200] * 3
    refused = client.get("/api/v1/logs/export")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "throttled" in refused.json()["message"].lower()
    # Another credential of the same environment has its own allowance.
    key = read_key(environment)
    assert bearer_client(key.plain).get("/api/v1/logs").status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(b"a\x00b:secret").decode(),
        "Basic " + base64.b64encode(b"client:nlk_a\x00b_c").decode(),
        "Bearer nlk_a\x00b_c",
    ],
)
def test_a_nul_in_the_credentials_is_a_401_not_a_500(header):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/logs")
    assert response.status_code == 401
    assert "NUL" in response.json()["message"]
