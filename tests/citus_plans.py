"""Reading Citus plans in tests: how many shards (tasks) a statement runs on.

A statement that names the environment of a table distributed by `environment_id` runs on
one shard (a router query: every distributed node of its plan has `Task Count: 1`); one that
leaves it out runs on every shard. `multi_shard_statements` EXPLAINs every statement a block
of code ran against the log and returns the ones that were not routed to one shard, so a test
can assert there are none."""

import json
import re

import pytest
from django.db import connection

from logs.citus import DISTRIBUTED, is_citus

# A statement that reads or writes a distributed table (a parent or a day partition).
_TOUCHES_LOG = re.compile(r"\b(" + "|".join(DISTRIBUTED) + r")(_p\d{8})?\b")
# What EXPLAIN cannot plan again, or what Citus does not plan (utility statements).
_NOT_PLANNED = re.compile(
    r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT|SET|SHOW|SELECT set_config|LOCK|DECLARE"
    r"|FETCH|CLOSE|PREPARE|DEALLOCATE|ANALYZE|VACUUM|CREATE|ALTER|DROP|COMMENT)\b",
    re.IGNORECASE,
)


def task_counts(sql: str) -> list[int]:
    """Task Count of every distributed node of the statement's plan (empty: no distributed
    table in it, it runs on the coordinator alone)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    counts: list[int] = []

    def walk(node):
        if isinstance(node, dict):
            if "Task Count" in node:
                counts.append(node["Task Count"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return counts


def log_statements(queries: list[dict]) -> list[str]:
    """The captured statements (CaptureQueriesContext) that touch a distributed log table and
    that EXPLAIN can plan."""
    return [
        query["sql"]
        for query in queries
        if _TOUCHES_LOG.search(query["sql"]) and not _NOT_PLANNED.match(query["sql"])
    ]


def multi_shard_statements(queries: list[dict]) -> dict[str, list[int]]:
    """{statement: its task counts} of every captured log statement not routed to one shard."""
    found = {}
    for sql in log_statements(queries):
        counts = task_counts(sql)
        if any(count != 1 for count in counts):
            found[sql] = counts
    return found


def multi_shard_statements_of_a_path(queries: list[dict]) -> dict[str, list[int]]:
    """multi_shard_statements of what a path ran, asserting it touched the log (a path that
    reads nothing from the log proves nothing)."""
    assert log_statements(queries), "no statement on the log was captured"
    return multi_shard_statements(queries)


@pytest.fixture
def citus(db):
    """Skips a test off a Citus coordinator (scripts/with-citus.sh): plain PostgreSQL has no
    distributed tables or shards. Test modules import it as an autouse fixture."""
    if not is_citus():
        pytest.skip(
            "needs a Citus coordinator (scripts/with-citus.sh): plain PostgreSQL has no "
            "distributed tables or shards"
        )
