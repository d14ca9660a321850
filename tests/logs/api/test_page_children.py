"""The logs API reads a page's deliveries and timelines one probe per notification, in its own
day's partition (logs/api/search.py): a page spread over several days (one user's, one
address's) costs what a page of one day costs. Read by the ids and their days' range instead,
every day of the range was probed for every notification of the page (and PostgreSQL could
walk an (environment_id, ...) index over those days instead): at 10,000,000 notifications
the API's user, email and number filters took 100-140 ms against 3-7 ms at 1,000,000."""

from collections import Counter, defaultdict

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from demo.loader import seed_logs
from logs.api.search import page_deliveries, page_events
from logs.models import Notification
from tests.logs.test_plans import SCANS, _explain, _plan_nodes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spread_page():
    """A user's page whose notifications fall on at least three days, in a log big enough
    that PostgreSQL plans as it does at scale."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    summary = seed_logs(notifications=9_000, days=3, environments=1, seed=5, end=midnight)
    [environment_id] = summary.environment_ids
    days = defaultdict(set)
    for user, created_at in Notification.objects.filter(environment_id=environment_id).values_list(
        "user_id", "created_at"
    ):
        days[user].add(created_at.date())
    user_id = max(days, key=lambda user: len(days[user]))
    page = list(
        Notification.objects.filter(environment_id=environment_id, user_id=user_id).order_by(
            "-created_at"
        )[:50]
    )
    assert len({n.created_at.date() for n in page}) >= 3
    return page


def _probes(read, page) -> dict[str, int]:
    """Each partition the read's statements probed, and how many times (executed scans only)."""
    with CaptureQueriesContext(connection) as captured:
        read(notifications=page)
    probes: Counter = Counter()
    for query in captured.captured_queries:
        for node in _plan_nodes(_explain(query, analyze=True)):
            if node["Node Type"] in SCANS and node.get("Actual Loops") and "Relation Name" in node:
                probes[node["Relation Name"]] += node["Actual Loops"]
    return dict(probes)


def _per_day(table: str, page, statements: int) -> dict[str, int]:
    days = Counter(f"{table}_p{n.created_at:%Y%m%d}" for n in page)
    return {partition: count * statements for partition, count in days.items()}


def test_a_pages_deliveries_and_timelines_are_one_probe_per_notification_in_its_own_day(
    spread_page,
):
    deliveries = _per_day("logs_delivery", spread_page, 1)
    assert _probes(page_deliveries, spread_page) == deliveries
    # The timelines: the event rows, and the deliveries' columns their folded events come from.
    assert _probes(page_events, spread_page) == {
        **_per_day("logs_event", spread_page, 1),
        **deliveries,
    }
