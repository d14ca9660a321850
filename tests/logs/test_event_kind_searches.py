"""Every event kind search finds exactly the notifications that have such an event, whatever
its strategy: a rare kind from its partial index (event_env_kind, event_env_channel_kind), a
universal one (the pipeline's, on nearly every notification) by checking the newest
notifications or deliveries. Compared, page after page, with a plain query of the seeded log."""

import pytest
from django.db import connection
from django.utils import timezone

from demo.loader import seed_logs
from logs.search_filters import NotificationFilters
from logs.selectors import notification_page
from logs.vocabulary import UNIVERSAL_EVENT_KINDS, EventKind

CHANNEL_CHOICES = [(), ("email",), ("sms",), ("call",), ("in_app",), ("push",), ("sms", "call")]
PAGE = 100


@pytest.fixture
def seeded(db):
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    summary = seed_logs(notifications=1_500, days=1, environments=2, seed=5, end=midnight)
    environment_id = summary.environment_ids[0]
    return environment_id, summary.samples[environment_id]


# The events folded into a delivery (logs.timeline), as conditions on its row `d`.
_FOLDED = {
    "sending": "d.sending_at IS NOT NULL",
    "sent": "d.accepted_at IS NOT NULL",
    "delivered": "d.channel = 'in_app' AND d.delivered_at IS NOT NULL",
}


def _reference(environment_id: int, kind: str, channels: tuple, types: tuple = ()) -> list:
    """The notifications of the environment with an event of `kind` (on one of `channels`
    when given), newest first: the log read plainly, no index strategy. An event is a row,
    or one folded into the notification (every Received) or its delivery (_FOLDED)."""
    conditions, params = ["e.kind = %s"], [kind]
    folded, folded_params = [_FOLDED.get(kind, "false")], []
    if channels:
        conditions.append("e.channel = ANY(%s)")
        params.append(list(channels))
        folded.append("d.channel = ANY(%s)")
        folded_params.append(list(channels))
    received = "true" if kind == "received" and not channels else "false"
    notification_conditions = ""
    if types:
        notification_conditions = " AND n.notification_type = ANY(%s)"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.id FROM logs_notification n WHERE n.environment_id = %s"
            f"{notification_conditions} AND ({received} OR EXISTS (SELECT 1 FROM logs_event e "
            "WHERE e.notification_id = n.id AND e.notification_created_at = n.created_at "
            f"AND e.environment_id = n.environment_id AND {' AND '.join(conditions)}) "
            "OR EXISTS (SELECT 1 FROM logs_delivery d WHERE d.notification_id = n.id "
            "AND d.notification_created_at = n.created_at AND d.environment_id = "
            f"n.environment_id AND {' AND '.join(folded)})) "
            "ORDER BY n.created_at DESC, n.id DESC",
            [environment_id, *([list(types)] if types else []), *params, *folded_params],
        )
        return [row[0] for row in cursor.fetchall()]


def _every_page(environment_id: int, filters: NotificationFilters) -> list:
    found, after = [], None
    while True:
        page = notification_page(
            environment_id=environment_id, filters=filters, after=after, limit=PAGE
        )
        found.extend(notification.id for notification in page.notifications)
        if page.next_cursor is None:
            return found
        after = page.next_cursor


@pytest.mark.django_db
def test_each_kind_with_and_without_a_channel_finds_exactly_the_notifications_with_it(seeded):
    environment_id, _ = seeded
    wrong, universal_matches = {}, 0
    for kind in EventKind.values:
        for channels in CHANNEL_CHOICES:
            expected = _reference(environment_id, kind, channels)
            found = _every_page(
                environment_id, NotificationFilters(event_kind=kind, channels=channels)
            )
            if found != expected:
                wrong[kind, channels] = (len(expected), len(found))
            if kind in UNIVERSAL_EVENT_KINDS:
                universal_matches += len(expected)
    assert not wrong, f"(kind, channels): (expected, found) matches: {wrong}"
    assert universal_matches > PAGE, "the seed has too few universal events to page through"


@pytest.mark.django_db
def test_each_kind_with_a_notification_filter_finds_exactly_its_matches(seeded):
    """With a type besides: notification filters check the candidates (read in rounds, or
    the notifications checked for the event)."""
    environment_id, sample = seeded
    types = (sample.notification_types[0],)
    wrong = {}
    for kind in EventKind.values:
        for channels in [(), ("email",), ("sms", "call")]:
            expected = _reference(environment_id, kind, channels, types)
            filters = NotificationFilters(
                event_kind=kind, channels=channels, notification_types=types
            )
            found = _every_page(environment_id, filters)
            if found != expected:
                wrong[kind, channels] = (len(expected), len(found))
    assert not wrong, f"(kind, channels): (expected, found) matches: {wrong}"
