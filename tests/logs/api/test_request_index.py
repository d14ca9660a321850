"""The GIN index on the stored request answers the requestFilter shapes it is meant for, and
`CompiledFilter.indexable` (what /api/docs/ and docs/api.md say an index serves) is what
PostgreSQL does."""

import json

import pytest
from django.db import connection

from logs.api.query_filter import request_filter_compile
from logs.api.search import request_filter_q
from logs.models import Notification
from tests.logs.api.conftest import make_log

pytestmark = pytest.mark.django_db
ROWS = 20


@pytest.fixture
def orders(environment):
    for n in range(ROWS):
        make_log(
            environment,
            minutes=n,
            merge_tags={"orderId": f"A-{n}", "n": n, "items": [{"sku": f"S-{n}"}]},
        )


def _explain(expression: str, *, analyze: bool) -> tuple[str, dict]:
    compiled = request_filter_compile([expression])
    # The request condition alone: whether the index can answer it, whatever else is there.
    queryset = Notification.objects.filter(request_filter_q(compiled))
    sql, params = queryset.query.sql_with_params()
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    with connection.cursor() as cursor:
        # Tiny tables: make the planner show which index it *can* use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN ({options}) {sql}", params)
        (plan,) = cursor.fetchone()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return json.dumps(plan), plan[0]["Plan"]


def _rows_from_the_request_index(node: dict) -> int | None:
    """How many rows the GIN index on request handed over (None: it was not read)."""
    found = None
    if node.get("Node Type") == "Bitmap Index Scan" and "request" in node.get("Index Name", ""):
        found = node["Actual Rows"]
    for child in node.get("Plans", []):
        rows = _rows_from_the_request_index(child)
        if rows is not None:
            found = (found or 0) + rows
    return found


def _request_index_entries() -> int:
    """How many rows the request index hands over when asked for every one (live or dead)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM logs_notification WHERE request @? '$'"
        )
        (plan,) = cursor.fetchone()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    entries = _rows_from_the_request_index(plan[0]["Plan"])
    assert entries is not None, "the request index was not read for a match-all jsonpath"
    return entries


def test_equalities_on_request_paths_use_the_gin_index(orders):
    for expression in [
        'request.mergeTags.orderId = "A-7"',
        "request.mergeTags.n = 7 && request.notificationId = order_tracking",
    ]:
        text, _ = _explain(expression, analyze=False)
        assert "Bitmap Index Scan" in text and "request_idx" in text, expression


@pytest.mark.parametrize(
    "expression",
    [
        'request.mergeTags.orderId = "A-7"',
        "request.mergeTags.n = 7",
        "request.mergeTags.items[0].sku = 'S-7'",
        "request.mergeTags.items[*].sku = 'S-7'",
        "request.mergeTags.items.sku = 'S-7'",
        "request.mergeTags.coupon IS NULL",
        "request.mergeTags.n = 7 || request.mergeTags.orderId = 'A-8'",
        "request.mergeTags.n = 7 && request.mergeTags.orderId != 'A-8'",
        "request.mergeTags.n = 7 && request.mergeTags.orderId = 'A-*'",
        "request.mergeTags.orderId != 'A-7'",
        "request.mergeTags.n > 7",
        "request.mergeTags.orderId = 'A-1*'",
        "request.mergeTags.orderId EXISTS",
        "request.mergeTags.orderId NOT EXISTS",
        "request.mergeTags.orderId IS NOT NULL",
        "request.mergeTags.n = 7 || request.mergeTags.n > 18",
        "request.mergeTags.n = 7 && trackingId = '00000000-0000-0000-0000-000000000000'",
    ],
)
def test_an_expression_is_indexable_exactly_when_the_index_narrows_the_rows(orders, expression):
    # Served: the index hands over only the candidate rows. Not served: it is not read, or
    # it hands over every row and PostgreSQL checks each one.
    _, plan = _explain(expression, analyze=True)
    rows = _rows_from_the_request_index(plan)
    # Against every entry the index holds, not this test's rows: the rows of earlier tests,
    # rolled back, stay in the index (dead) until a vacuum, and are handed over too.
    served = rows is not None and rows < _request_index_entries()
    assert request_filter_compile([expression]).indexable is served, (expression, rows)
