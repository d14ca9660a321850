"""What a page of GET /api/v1/logs costs the database: two statements (the page, its
deliveries), each prepared once per connection with a text that does not depend on the page,
reading only the columns the answer shows, and never a COUNT."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext

from tests.logs.api.conftest import T0, bearer_client, make_log, read_key

pytestmark = pytest.mark.django_db

# Filters and the statements their page takes besides the deliveries: one, or for a child
# filter with notification filters besides, the candidates and their check (one round here).
FILTERS = [
    ({}, 1),
    ({"channel": "email"}, 1),
    ({"channel": ["email", "sms"]}, 1),
    ({"status": "failure"}, 1),
    ({"channel": "sms", "status": "failure"}, 1),
    ({"eventKind": "failed"}, 1),
    ({"emailPrefix": "ada"}, 1),
    ({"userId": "u-1"}, 1),
    ({"type": "order_tracking", "eventKind": "failed"}, 2),
]


@pytest.fixture
def logs(environment):
    outcomes = [
        {"email": ("delivered", "")},
        {"email": ("failed", "bounce"), "sms": ("delivered", "")},
        {"sms": ("failed", "undelivered"), "call": ("delivered", "busy")},
    ]
    return [
        make_log(
            environment,
            minutes=n,
            user_id=f"u-{n % 3}",
            email=f"ada{n}@example.com",
            outcomes=outcomes[n % 3],
        )
        for n in range(30)
    ]


def _page(api, params: dict) -> tuple[dict, list[dict]]:
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/logs", params)
    assert response.status_code == 200, response.content
    return response.json(), queries.captured_queries


def _deliveries_queries(queries: list[dict]) -> list[dict]:
    return [q for q in queries if "logs_delivery" in q["sql"].split(" WHERE ")[0]]


def test_a_page_and_its_deliveries_are_two_statements_and_no_count(api, logs):
    api.get("/api/v1/logs", {"limit": 1})  # the credentials, cached from here on (hotcache)
    for params, page_statements in FILTERS:
        body, queries = _page(api, {**params, "limit": 50})
        assert body["results"], params
        assert all(row["deliveries"] for row in body["results"])
        assert len(_deliveries_queries(queries)) == 1, params
        assert len(queries) == page_statements + 1, (params, [q["sql"][:99] for q in queries])
        assert not any("COUNT(" in q["sql"].upper() for q in queries), params


def test_the_deliveries_statement_is_prepared_and_the_same_for_any_page(api, logs):
    api.get("/api/v1/logs", {"limit": 1})
    texts = set()
    for limit in (2, 7, 30):
        _, queries = _page(api, {"limit": limit})
        [deliveries] = _deliveries_queries(queries)
        # Prepared (logs.statements.prepared_rows): planned once per connection, not per page.
        assert deliveries.get("prepared"), deliveries["sql"][:200]
        texts.add(deliveries["prepared"][0])
    assert len(texts) == 1


def _page_query(queries: list[dict]) -> str:
    [page] = [q["sql"] for q in queries if q["sql"].startswith('SELECT "logs_notification"')]
    return page.split(" FROM ")[0]


@pytest.mark.parametrize(
    "params", [{}, {"channel": "sms"}, {"type": "order_tracking", "eventKind": "failed"}]
)
def test_a_page_reads_no_request_json_unless_masking_needs_it(api, environment, logs, params):
    api.get("/api/v1/logs", {"limit": 1})
    _, queries = _page(api, params)
    columns = _page_query(queries)
    assert '"email"' in columns
    assert '"request"' not in columns and '"merge_tags"' not in columns

    # A masked key masks the addresses the request holds too: it reads the request.
    masked = read_key(environment)
    masked.masked = True
    masked.save()
    client = bearer_client(masked.plain)
    client.get("/api/v1/logs", {"limit": 1})
    body, queries = _page(client, params)
    assert '"request"' in _page_query(queries)
    real = {log.email for log in logs}
    assert body["results"] and not any(row["email"] in real for row in body["results"])


@pytest.fixture
def compiled(monkeypatch) -> list[str]:
    """The SQL Django's compiler builds (every query and subquery), as it builds it."""
    built: list[str] = []
    as_sql = SQLCompiler.as_sql

    def spy(self, *args, **kwargs):
        sql, params = as_sql(self, *args, **kwargs)
        built.append(sql)
        return sql, params

    monkeypatch.setattr(SQLCompiler, "as_sql", spy)
    return built


def _at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


# Each with two searches of one shape: other values, the same filters and number of values.
SHAPES = [
    ({"userId": "u-1"}, {"userId": "u-2"}),
    ({"email": "ADA4@example.com"}, {"email": "ada7@example.com"}),
    ({"emailPrefix": "ada1"}, {"emailPrefix": "ada2"}),
    ({"status": "failure", "userId": "u-1"}, {"status": "failure", "userId": "u-2"}),
    ({"channel": "sms", "createdTo": _at(10)}, {"channel": "sms", "createdTo": _at(20)}),
    ({"eventKind": "failed", "createdTo": _at(10)}, {"eventKind": "failed", "createdTo": _at(20)}),
]


@pytest.mark.parametrize(("first", "second"), SHAPES)
def test_a_search_of_a_shape_already_seen_builds_no_sql(api, logs, compiled, first, second):
    api.get("/api/v1/logs", {"limit": 1})
    body, queries = _page(api, {**first, "limit": 5})  # builds the shape's statement
    assert body["results"] and compiled
    compiled.clear()
    other, other_queries = _page(api, {**second, "limit": 5})
    # Its statement is the one built for the first, with its own values bound.
    assert compiled == []
    page = [q for q in queries if q.get("prepared")]
    other_page = [q for q in other_queries if q.get("prepared")]
    assert [q["prepared"][0] for q in page] == [q["prepared"][0] for q in other_page]
    assert [q["prepared"][1] for q in page] != [q["prepared"][1] for q in other_page]
    rows = {row["trackingId"] for row in body["results"]}
    other_rows = {row["trackingId"] for row in other["results"]}
    assert other_rows and rows != other_rows


def test_the_next_page_binds_its_cursor_in_the_first_pages_statement(api, logs, compiled):
    api.get("/api/v1/logs", {"limit": 1})
    seen = []
    params = {"type": "order_tracking", "limit": 3}
    for _ in range(4):  # the first page, the second builds the cursor's shape, then none
        compiled.clear()
        body, _ = _page(api, params)
        seen.append((len(compiled), [row["trackingId"] for row in body["results"]]))
        params["cursor"] = body["next"]
    assert [count for count, _ in seen[2:]] == [0, 0]
    pages = [ids for _, ids in seen]
    assert all(len(ids) == 3 for ids in pages)
    assert len({i for ids in pages for i in ids}) == 12  # 12 different rows, no repeats
