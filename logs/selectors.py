"""Reads of the log for support search and the logs API.

Every selector takes the tenant (an environment id) and reads newest first with keyset
pagination on (created_at, id), so page 1,000 costs what page 1 does and nothing counts the
table. Each filter is served by an index that starts with the environment and ends with the
newest-first order (see logs/models.py).

`notification_page` chooses one of three strategies:

- notification columns only (tracking id, user id, email, phone number, type, status, dates),
  or besides them an event kind nearly every notification has (UNIVERSAL_EVENT_KINDS, not in
  the kind indexes): one index scan on logs_notification, each row checked for the event by
  its key, stopping after one page;
- a channel, a channel's status, event kind/sub-kind or provider message id (on deliveries
  and events) and at most dates besides: its index gives the notification ids newest first
  (several channels or delivery states: one index range each, merged in order; a channel
  with a universal event kind: the channel's deliveries, each checked for the event), and the
  page's notifications are fetched by key within the partitions those ids fall in, in the
  same query;
- the same with notification filters besides: candidates are read in bounded rounds and
  checked against the notifications; a page is full unless the matches ran out, or it says
  that it stopped early and how far back it looked.

Nothing sorts more than a page's worth of rows: tests/logs/test_plans.py checks each plan.

What a search takes and gives is in logs/search_filters.py, its conditions (and what the
filters mean) in
logs/search_conditions.py, and the one SQL text per shape of search in logs/search_shapes.py.
The reads of one notification (notification_get, notification_timeline,
notification_deliveries, notification_deliveries_sent) follow the search here.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from logs.content import deliveries_content
from logs.models import Delivery, Event, Notification
from logs.search_conditions import (
    before,
    candidates_sql,
    driving_branches,
    notification_queryset,
)
from logs.search_filters import (
    NOTIFICATION_FIELDS,
    PAGE_SIZE_MAX,
    Cursor,
    NotificationFilters,
    NotificationPage,
)
from logs.search_shapes import cached_statement
from logs.statements import prepared_instances, prepared_rows
from logs.timeline import timeline

# A child-driven search whose other filters reject candidates reads this many pages' worth
# of candidates per round, for at most this many rounds per page: the work a page may cost is
# bounded, and a page that stopped early says so (NotificationPage.stopped_early).
_CANDIDATES_PER_ROUND = 4
SEARCH_BUDGET_ROUNDS = 10


def _page_from_notifications(
    environment_id: int,
    filters: NotificationFilters,
    after: Cursor | None,
    limit: int,
    fields: Sequence[str],
) -> tuple[str, list]:
    """Strategy 1: every filter is on the notification itself, served by one of its indexes
    read newest first and stopped after a page. The page's statement."""
    queryset = notification_queryset(environment_id=environment_id, filters=filters)
    queryset = queryset.filter(before(after, "created_at", "id"))
    if filters.email_prefix:
        # A prefix matches a range of the email index that is not in date order (thousands of
        # rows for "elizabet"): the page's keys come from that index alone (it includes the
        # address, so an index-only scan), and only the page's rows are read.
        keys = queryset.values_list("created_at", "id")[: limit + 1]
        return _page_of_keys(environment_id, *keys.query.sql_with_params(), fields)
    return _statement(queryset[: limit + 1], fields)


def _page_of_keys(
    environment_id: int, sql: str, params: Sequence, fields: Sequence[str]
) -> tuple[str, list]:
    """The statement of the notifications whose (created_at, id) is among the rows of `sql` (a
    page plus one, newest first): fetched by their full key, which lets PostgreSQL prune
    partitions while it runs."""
    # Django has no two-column IN (subquery): a RawSQL of Django's own SQL, values as params.
    keys = RawSQL(  # noqa: S611
        f'("logs_notification"."created_at", "logs_notification"."id") IN ({sql})',
        params,
        output_field=BooleanField(),
    )
    queryset = Notification.objects.filter(environment_id=environment_id).filter(keys)
    return _statement(queryset, fields)


def _page_from_children(
    environment_id: int,
    branches: list[QuerySet],
    after: Cursor | None,
    limit: int,
    fields: Sequence[str],
) -> tuple[str, list]:
    """Strategy 2: the child index decides alone (other than dates, which it applies itself),
    so every candidate matches. One query reads a page plus one from the child index and
    fetches those notifications by their full key, which lets PostgreSQL prune partitions
    while it runs."""
    candidates = candidates_sql(branches, after, limit + 1, count_as_parameter=False)
    return _page_of_keys(environment_id, *candidates, fields)


def _page_from_children_filtered(
    environment_id: int,
    filters: NotificationFilters,
    rest: NotificationFilters,
    after: Cursor | None,
    limit: int,
    fields: Sequence[str],
) -> NotificationPage:
    """Strategy 3: the child index gives candidates newest first and the notification filters
    reject some. Candidates are read in rounds of a few pages' worth, up to SEARCH_BUDGET_ROUNDS
    rounds; a page is full unless the candidates ran out, or it says it stopped early and how
    far back it looked (its cursor resumes there)."""
    batch = (limit + 1) * _CANDIDATES_PER_ROUND
    matched: list[Notification] = []
    position = after
    for _ in range(SEARCH_BUDGET_ROUNDS):
        candidates = prepared_rows(
            *cached_statement(_candidates_statement, environment_id, filters, position, batch)
        )
        matched.extend(_matching(environment_id, rest, candidates, fields))
        if candidates:
            position = Cursor(*candidates[-1])
        if len(matched) > limit or len(candidates) < batch:
            return _page(matched, limit)
    # The budget ran out: resume after the last candidate examined, and say how far back
    # this page looked when it is short.
    page = _page(matched, limit)
    if page.next_cursor is None:
        page.next_cursor = position
        page.stopped_early = len(page.notifications) < limit
        page.searched_back_to = position.created_at
    return page


def _candidates_statement(
    environment_id: int, filters: NotificationFilters, after: Cursor | None, count: int
) -> tuple[str, list]:
    """A round of strategy 3: the newest `count` candidates after `after`."""
    branches, _rest = driving_branches(environment_id, filters)
    return candidates_sql(branches, after, count, count_as_parameter=True)


def _statement(queryset: QuerySet, fields: Sequence[str]) -> tuple[str, list]:
    """The SQL of `queryset`'s `fields`, run as a prepared statement (logs.statements): its text
    is the same for every search of its shape (values are parameters), so PostgreSQL plans it
    once per connection. Planning a search over the partitioned tables (every day's
    partitions and their indexes, twice) took five times as long as running it."""
    return queryset.values_list(*fields).query.sql_with_params()


def _matching(
    environment_id: int,
    filters: NotificationFilters,
    candidates: list[tuple[datetime, uuid.UUID]],
    fields: Sequence[str],
) -> list[Notification]:
    if not candidates:
        return []
    return list(
        notification_queryset(environment_id=environment_id, filters=filters)
        .filter(
            id__in=[notification_id for _, notification_id in candidates],
            # The partition key: only the partitions of these candidates are read.
            created_at__gte=candidates[-1][0],
            created_at__lte=candidates[0][0],
        )
        .order_by()  # sorted by _page; lets PostgreSQL probe the keys in any order
        .only(*fields)
    )


def notification_page(
    *,
    environment_id: int,
    filters: NotificationFilters = NotificationFilters(),
    after: Cursor | None = None,
    limit: int = 50,
    fields: Sequence[str] = NOTIFICATION_FIELDS,
) -> NotificationPage:
    """One page of the environment's notifications matching `filters`, newest first: chooses
    the strategy that answers from an index and reads about a page of rows. `fields` are the
    columns read (attnames; the others are deferred): a caller that shows a summary leaves
    out the request and merge tags (JSON, parsed per row)."""
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise ValueError(f"The page size must be between 1 and {PAGE_SIZE_MAX} (got {limit}).")
    filters = filters.normalized()
    fields = _in_model_order(fields)
    statement = cached_statement(_page_statement, environment_id, filters, after, limit, fields)
    if statement is _NO_PAGE:
        return NotificationPage()  # e.g. a sub-kind with a kind it does not belong to
    if statement is _IN_ROUNDS:
        _, rest = driving_branches(environment_id, filters)
        return _page_from_children_filtered(environment_id, filters, rest, after, limit, fields)
    return _page(prepared_instances(Notification, *statement, fields), limit)


# What _page_statement answers for a search that is not one statement.
_NO_PAGE = "no page"  # it can match nothing
_IN_ROUNDS = "in rounds"  # strategy 3


def _page_statement(
    environment_id: int,
    filters: NotificationFilters,
    after: Cursor | None,
    limit: int,
    fields: tuple[str, ...],
) -> tuple[str, list] | str:
    """The strategy for this search (see the module) and, for the first two, the page's one
    statement."""
    driving = driving_branches(environment_id, filters)
    if driving is None:
        return _page_from_notifications(environment_id, filters, after, limit, fields)
    branches, rest = driving
    if any(branch.query.is_empty() for branch in branches):
        return _NO_PAGE
    if _dates_only(rest):
        return _page_from_children(environment_id, branches, after, limit, fields)
    return _IN_ROUNDS


def _in_model_order(fields: Sequence[str]) -> tuple[str, ...]:
    # Model.from_db reads a row with deferred fields in the model's field order.
    unknown = set(fields) - set(NOTIFICATION_FIELDS)
    if unknown or "id" not in fields or "created_at" not in fields:
        raise ValueError(
            f"fields: {sorted(unknown)} are not notification columns; name attnames, "
            "id and created_at included (the page's cursor)."
        )
    return tuple(name for name in NOTIFICATION_FIELDS if name in fields)


def _dates_only(filters: NotificationFilters) -> bool:
    # The driving query applies the date range itself, so its candidates all match.
    return filters == NotificationFilters(
        created_from=filters.created_from, created_to=filters.created_to
    )


def _page(rows: list[Notification], limit: int) -> NotificationPage:
    rows.sort(key=lambda n: (n.created_at, n.id), reverse=True)
    if len(rows) > limit:
        last = rows[limit - 1]
        return NotificationPage(rows[:limit], Cursor(last.created_at, last.id))
    return NotificationPage(rows, None)


def notification_get(*, environment_id: int, tracking_id: uuid.UUID | str) -> Notification:
    """One notification of the environment; another tenant's, or a malformed id, answers
    DoesNotExist (a 404)."""
    try:
        tracking_id = tracking_id if isinstance(tracking_id, uuid.UUID) else uuid.UUID(tracking_id)
    except (TypeError, ValueError):
        raise Notification.DoesNotExist(f"{tracking_id!r} is not a tracking id.") from None
    return Notification.objects.get(environment_id=environment_id, id=tracking_id)


def _children_of(notification: Notification) -> dict:
    """A notification's deliveries or events: its key, environment included (on Citus, the log
    distributed by environment, the read then runs on the environment's shard alone)."""
    return {
        "notification_id": notification.id,
        "notification_created_at": notification.created_at,
        "environment_id": notification.environment_id,
    }


def notification_timeline(
    *, notification: Notification, deliveries: Sequence[Delivery] | None = None
) -> list[Event]:
    """The notification's events in the order they happened: its rows and the events folded
    into it and its deliveries (logs.timeline; the deliveries are read when not given)."""
    if deliveries is None:
        deliveries = list(notification_deliveries(notification=notification))
    rows = Event.objects.filter(**_children_of(notification))
    return timeline(notification, deliveries, rows)


def notification_deliveries(*, notification: Notification) -> QuerySet:
    return Delivery.objects.filter(**_children_of(notification)).order_by("channel")


def notification_deliveries_sent(*, notification: Notification) -> list[Delivery]:
    """The notification's deliveries, each with `sent_content` (logs.content.DeliveryContent):
    its subject, HTML and text exactly as sent, however they are stored; and `destination`
    where it was sent, stored or not (Delivery.destination_of)."""
    deliveries = list(notification_deliveries(notification=notification))
    for delivery, content in zip(deliveries, deliveries_content(deliveries), strict=True):
        delivery.sent_content = content
        delivery.destination = delivery.destination_of(notification)
    return deliveries
