"""Every support search is an index lookup: the plans of the queries each selector runs, on
seeded data with fresh statistics, contain no sequential scan of a partition that has rows."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from logs.demo import seed_logs
from logs.selectors import NotificationFilters, notification_page, notification_timeline


@pytest.fixture
def seeded(db):
    # One full day of rows (ending at midnight, so no partly filled partition): a partition
    # big enough that PostgreSQL weighs index against sequential scans as it does at scale.
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    summary = seed_logs(notifications=15_000, days=1, environments=2, seed=11, end=midnight)
    environment_id = summary.environment_ids[0]
    return environment_id, summary.samples[environment_id]


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _rows_in(relation: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [relation])
        return cursor.fetchone()[0]


def _sequential_scans(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return [
        node["Relation Name"]
        for node in _plan_nodes(plan[0]["Plan"])
        if node["Node Type"] == "Seq Scan" and _rows_in(node["Relation Name"]) > 0
    ]


def _searches(sample) -> dict[str, NotificationFilters]:
    return {
        "tracking id": NotificationFilters(tracking_ids=[sample.tracking_ids[0]]),
        "user id": NotificationFilters(user_ids=[sample.user_ids[0]]),
        "email": NotificationFilters(email=sample.emails[0].upper()),
        "email prefix": NotificationFilters(email_prefix=sample.emails[0][:6]),
        "number": NotificationFilters(number=sample.numbers[0]),
        "provider message id": NotificationFilters(
            provider_message_id=sample.provider_message_ids[0]
        ),
        "type": NotificationFilters(notification_types=[sample.notification_types[0]]),
        "status": NotificationFilters(statuses=["failure"]),
        "channel": NotificationFilters(channels=["sms"]),
        "event kind": NotificationFilters(event_kind="failed"),
        "event sub-kind": NotificationFilters(event_sub_kind="bounce"),
        "channel and status": NotificationFilters(channels=["email"], statuses=["failure"]),
        "newest first": NotificationFilters(),
    }


@pytest.mark.django_db
def test_no_search_scans_a_partition_sequentially(seeded):
    environment_id, sample = seeded
    offenders = {}
    for name, filters in _searches(sample).items():
        with CaptureQueriesContext(connection) as queries:
            page = notification_page(environment_id=environment_id, filters=filters, limit=50)
            # Page two too: the keyset condition must keep the index usable.
            if page.next_cursor:
                notification_page(
                    environment_id=environment_id, filters=filters, after=page.next_cursor
                )
            if page.notifications:
                list(notification_timeline(notification=page.notifications[0]))
        assert page.notifications, f"the seeded data has no match for {name}"
        scans = [scan for query in queries for scan in _sequential_scans(query["sql"])]
        if scans:
            offenders[name] = scans
    assert not offenders, f"sequential scans of partitions with rows: {offenders}"


@pytest.mark.django_db
def test_the_check_catches_a_sequential_scan(seeded):
    """The plan walk above is not vacuous: an unindexed search is reported."""
    assert _sequential_scans("SELECT * FROM logs_notification WHERE timezone = 'Europe/Paris'")
