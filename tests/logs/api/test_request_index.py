"""The GIN index on the stored request answers the requestFilter shapes it is meant for."""

import pytest
from django.db import connection

from logs.api.query_filter import request_filter_compile
from logs.api.search import request_filter_q
from logs.models import Notification
from tests.logs.api.conftest import make_log

pytestmark = pytest.mark.django_db


def plan(environment, expression: str) -> str:
    compiled = request_filter_compile([expression])
    # The request condition alone: whether the index can answer it, whatever else is there.
    queryset = Notification.objects.filter(request_filter_q(compiled))
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # Tiny tables: make the planner show which index it *can* use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_equalities_on_request_paths_use_the_gin_index(environment):
    for n in range(20):
        make_log(environment, minutes=n, merge_tags={"orderId": f"A-{n}", "n": n})
    for expression in [
        'request.mergeTags.orderId = "A-7"',
        "request.mergeTags.n = 7 && request.notificationId = order_tracking",
    ]:
        assert "Bitmap Index Scan on logs_notification_" in plan(environment, expression)
        assert "request_idx" in plan(environment, expression), expression
