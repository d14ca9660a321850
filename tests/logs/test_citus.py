"""The log on a Citus cluster (scripts/with-citus.sh runs these against its coordinator):
migrate distributed the log tables by environment, colocated; day partitions made and
dropped later follow their parent; and the hot statements that name the environment run on
one shard (EXPLAIN: a router plan of one task). On plain PostgreSQL they are skipped: there
are no shards to count."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.deletion import environment_rows_purge
from logs.citus import DISTRIBUTED
from logs.partitions import partition_create, partition_drop, partition_list, partition_name
from logs.search_filters import NotificationFilters
from logs.selectors import notification_page
from logs.services import event_record, notification_create
from tests.citus_plans import citus, log_statements, task_counts  # noqa: F401 (fixture)
from tests.factories import EnvironmentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("citus")]


def _distributed() -> dict[str, tuple[str, int]]:
    """{table: (distribution column, colocation id)} of every distributed log table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name::text, distribution_column, colocation_id FROM citus_tables"
            " WHERE citus_table_type = 'distributed'"
        )
        return {name: (column, colocation) for name, column, colocation in cursor.fetchall()}


def test_the_log_and_its_day_partitions_are_distributed_by_environment_colocated():
    distributed = _distributed()
    tables = [
        name
        for table in DISTRIBUTED
        for name in [table, *(partition.name for partition in partition_list(table))]
    ]

    assert {name: distributed.get(name, ("local", None))[0] for name in tables} == dict.fromkeys(
        tables, "environment_id"
    )
    assert len({distributed[name][1] for name in tables}) == 1  # one colocation group
    # What stays local says so in logs/citus.py: the tenancy tables, and the inbox.
    assert "accounts_environment" not in distributed
    assert "webhooks_inbox" not in distributed


def test_a_day_partition_made_later_is_distributed_and_dropped_with_its_shards():
    day = timezone.now().astimezone(UTC).date() + timedelta(days=40)
    partition_create(day=day)
    name = partition_name("logs_event", day)

    assert _distributed()[name][0] == "environment_id"

    [partition] = [p for p in partition_list("logs_event") if p.name == name]
    partition_drop(partition)

    assert name not in _distributed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_dist_shard WHERE logicalrelid::text = %s", [name])
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize(
    "filters",
    [
        NotificationFilters(),
        NotificationFilters(user_ids=["ada"]),
        NotificationFilters(email="ada@example.com"),
        NotificationFilters(statuses=["received"]),
    ],
    ids=["newest", "user", "email", "status"],
)
def test_a_search_of_one_environment_runs_on_one_shard(filters):
    environment = EnvironmentFactory()
    for user in ("ada", "grace"):
        notification_create(environment_id=environment.id, notification_type="welcome",
                            user_id=user, email=f"{user}@example.com")  # fmt: skip

    with CaptureQueriesContext(connection) as queries:
        page = notification_page(environment_id=environment.id, filters=filters)

    assert page.notifications
    statements = log_statements(queries.captured_queries)
    assert statements
    assert {sql: task_counts(sql) for sql in statements} == {sql: [1] for sql in statements}


def test_an_event_locks_its_notification_on_one_shard():
    environment = EnvironmentFactory()
    notification = notification_create(
        environment_id=environment.id, notification_type="welcome", user_id="ada"
    )

    with CaptureQueriesContext(connection) as queries:
        event_record(notification_id=notification.id, environment_id=environment.id,
                     kind="sent", channel="email", source="api")  # fmt: skip

    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert len(locks) == 1
    assert task_counts(locks[0]) == [1]


def test_the_tenant_purge_deletes_on_one_shard():
    environment = EnvironmentFactory()
    created_at = timezone.now()
    notification_create(environment_id=environment.id, notification_type="welcome",
                        user_id="ada", created_at=created_at)  # fmt: skip
    [partition] = [
        p
        for p in partition_list("logs_notification")
        if p.start is not None and p.start <= created_at < p.start + timedelta(days=1)
    ]

    with CaptureQueriesContext(connection) as queries:
        removed = environment_rows_purge(partition=partition.name, environment_id=environment.id)

    assert removed == 1
    [delete] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert task_counts(delete) == [1]


def test_router_plans_are_told_apart_from_multi_shard_ones():
    """The check above can fail: a statement that leaves the environment out runs on every
    shard."""
    created_at = datetime.now(UTC)
    sql = (
        "SELECT id FROM logs_notification WHERE created_at >= "
        f"'{created_at.isoformat()}'::timestamptz"
    )

    assert task_counts(sql) != [1]


def test_the_timeouts_hold_on_the_workers_where_the_rows_are_locked():
    """The coordinator's session starts with the timeouts (libpq options); its connections
    to the workers do not. migrate makes them the role's defaults, which Citus propagates."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT result FROM run_command_on_workers("
            "$$SELECT (extract(epoch FROM current_setting('lock_timeout')::interval) * 1000)"
            "::bigint || ' ' || (extract(epoch FROM current_setting('statement_timeout')"
            "::interval) * 1000)::bigint$$)"
        )
        on_workers = {result for (result,) in cursor.fetchall()}

    expected = f"{settings.DATABASE_LOCK_TIMEOUT} {settings.DATABASE_STATEMENT_TIMEOUT}"
    assert on_workers == {expected}
