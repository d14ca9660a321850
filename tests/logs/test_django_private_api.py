"""The log leans on one private Django module: logs/api/search.py pages a requestFilter search
with `django.db.models.fields.tuple_lookups` (Tuple, TupleLessThan), which Django does not
document and may change in any release (issue 6, item 9). These tests pin what that page
relies on, so an upgrade that changes it fails here, saying what to use instead, rather than
a page that skips or repeats rows, or reads a whole index to find its place."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db.models import F

from logs.api.query_filter import request_filter_compile
from logs.api.search import log_page
from logs.models import Notification
from logs.search_filters import Cursor, NotificationFilters
from logs.services import notification_create
from tests.factories import EnvironmentFactory

INSTANT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
REPLACEMENT = (
    "Django changed its private tuple_lookups. Replace TupleLessThan in logs/api/search.py with "
    "the public keyset condition logs/search_conditions.py builds (created_at <= c AND "
    "(created_at < c OR id < i))."
)


def test_the_keyset_condition_is_one_row_comparison():
    # PostgreSQL reads `(created_at, id) < (c, i)` as one range of the (environment_id,
    # created_at, id) index; an expansion into ORs would not be.
    from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan

    condition = TupleLessThan(Tuple(F("created_at"), F("id")), (INSTANT, uuid.uuid4()))
    sql = str(Notification.objects.filter(condition).query)
    row = '("logs_notification"."created_at", "logs_notification"."id") < ('
    assert row in sql, f"{REPLACEMENT}\nSQL now: {sql}"


@pytest.mark.django_db
def test_a_request_filter_pages_through_rows_of_one_instant_once_each():
    """Six notifications created at the same instant: only the id orders them, so the
    cursor's second column decides every page."""
    environment = EnvironmentFactory()
    made = [
        notification_create(
            environment_id=environment.id, notification_type="welcome", user_id=f"u{n}",
            request={"mergeTags": {"n": n}}, created_at=INSTANT,
        )
        for n in range(6)
    ]  # fmt: skip
    compiled = request_filter_compile(["request.mergeTags.n >= 0"])
    seen, after = [], None
    for _ in range(len(made) + 1):
        page = log_page(
            environment_id=environment.id, filters=NotificationFilters(),
            request_filter=compiled, after=after, limit=4,
        )  # fmt: skip
        seen += [notification.id for notification in page.notifications]
        after = page.next_cursor
        if after is None:
            break
        assert isinstance(after, Cursor)

    assert seen == sorted((n.id for n in made), reverse=True), REPLACEMENT
