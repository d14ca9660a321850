"""Reads the logs API needs beyond logs/selectors.py: a page with a `requestFilter`, the
deliveries and events of a page in two queries, and the rows of an export.

Everything takes the tenant (environment id) and goes through the selectors' own querysets,
so an API answer is the console's answer.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, F, Func, OuterRef, Q, QuerySet, TextField, Value
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.db.models.functions import Cast
from psycopg.errors import QueryCanceled

from logs.api.query_filter import CompiledFilter
from logs.models import Delivery, Notification
from logs.search_conditions import notification_queryset
from logs.search_filters import NOTIFICATION_FIELDS, Cursor, NotificationFilters, NotificationPage
from logs.selectors import notification_page
from logs.statements import prepared_rows
from logs.timeline import timeline


class _JsonPath(Value):
    """A bound parameter cast to jsonpath: the path travels as data, never as SQL."""

    def as_sql(self, compiler, connection):
        sql, params = super().as_sql(compiler, connection)
        return f"{sql}::jsonpath", params


class _RequestMatches(Func):
    # `request @@ path`: the form a GIN jsonb_path_ops index on request can answer.
    template = "(%(expressions)s)"
    arg_joiner = " @@ "
    output_field = BooleanField()


def _tracking_id_vars() -> Func:
    # {"trackingId": "<this row's id>"}: the jsonpath reads it as $trackingId.
    return Func(Value("trackingId"), Cast(F("id"), TextField()), function="jsonb_build_object")


def request_filter_q(compiled: CompiledFilter) -> Q:
    if compiled.uses_tracking_id:
        # jsonb_path_match binds $trackingId per row; silent (last argument) so a type
        # mismatch is "no match", as with @@. No index can answer it.
        match = Func(
            F("request"),
            _JsonPath(compiled.jsonpath),
            _tracking_id_vars(),
            Value(True),
            function="jsonb_path_match",
            output_field=BooleanField(),
        )
        return Q(match)
    return Q(_RequestMatches(F("request"), _JsonPath(compiled.jsonpath)))


def log_page(
    *,
    environment_id: int,
    filters: NotificationFilters,
    request_filter: CompiledFilter | None = None,
    after: Cursor | None = None,
    limit: int,
    fields: Sequence[str] = NOTIFICATION_FIELDS,
) -> NotificationPage:
    """One page, newest first. Without a requestFilter this is the selectors' index-driven
    `notification_page`; with one, the same filters plus the jsonpath, evaluated by
    PostgreSQL while it walks the (environment, created_at) index or the GIN index."""
    if request_filter is None:
        return notification_page(
            environment_id=environment_id, filters=filters, after=after, limit=limit, fields=fields
        )
    queryset = notification_queryset(environment_id=environment_id, filters=filters.normalized())
    queryset = queryset.filter(request_filter_q(request_filter)).only(*fields)
    if after is not None:
        queryset = queryset.filter(
            TupleLessThan(Tuple(F("created_at"), F("id")), (after.created_at, after.id))
        )
    rows = _bounded(queryset[: limit + 1])
    if len(rows) > limit:
        last = rows[limit - 1]
        return NotificationPage(rows[:limit], Cursor(last.created_at, last.id))
    return NotificationPage(rows, None)


class SearchTooSlow(Exception):
    """A requestFilter search ran past LOGS_API_QUERY_TIMEOUT_MS."""


def _bounded(queryset) -> list:
    # A requestFilter no index answers is checked row by row over the date range: bound it,
    # so one broad query cannot hold a connection and a core for minutes.
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SET LOCAL statement_timeout = %s", [str(settings.LOGS_API_QUERY_TIMEOUT_MS)]
            )
            return list(queryset)
    except OperationalError as exc:
        if isinstance(exc.__cause__, QueryCanceled):
            raise SearchTooSlow from None
        raise


# The child rows of a page's notifications (the tenant's): each notification's in its own
# day. The page's ids and days are two array parameters joined to the table, so a notification
# is one probe of the unique (notification_id, ...) index of its own day's partition (the join
# prunes the partitions row by row as it runs). The writer's form (logs/recording_reads.py:
# the ids and their days' range) probes every id in every day of the range, which for a page
# spread over a week (one user's, one address's) is every partition's index probed for each
# of its notifications, and by the environment may walk an (environment_id, ...) index over
# those days instead. One text for any page: prepared and planned once per connection
# (logs.statements.prepared_rows), read as plain tuples. The environment is named: on Citus
# (the log distributed by environment) each runs on that environment's shard alone.
_PAGE_CHILDREN = (
    "FROM unnest(%s::uuid[], %s::timestamptz[]) AS page (id, created_at) "
    "JOIN {table} AS child ON child.notification_id = page.id "
    "AND child.notification_created_at = page.created_at AND child.environment_id = %s"
)
_PAGE_DELIVERIES = (
    "SELECT child.notification_id, child.channel, child.state, child.state_detail "
    + _PAGE_CHILDREN.format(table="logs_delivery")
    + " ORDER BY child.channel"
)
_PAGE_EVENTS = (
    "SELECT child.notification_id, child.id, child.kind, child.sub_kind, child.channel, "
    "child.occurred_at, child.detail, child.dedupe_key " + _PAGE_CHILDREN.format(table="logs_event")
)
# What the events folded into the deliveries need (logs/timeline.py).
_PAGE_FOLDED = (
    "SELECT child.notification_id, child.id, child.channel, child.provider, child.sending_at, "
    "child.accepted_at, child.delivered_at, child.sender, child.send_max_attempts "
    + _PAGE_CHILDREN.format(table="logs_delivery")
)


class DeliveryLine(NamedTuple):
    channel: str
    state: str
    state_detail: str


class EventLine(NamedTuple):
    kind: str
    sub_kind: str
    channel: str
    occurred_at: datetime
    detail: str


class _EventRow(NamedTuple):
    id: int | None
    kind: str
    sub_kind: str
    channel: str
    occurred_at: datetime
    detail: str
    dedupe_key: str


class _FoldedColumns(NamedTuple):
    id: int
    channel: str
    provider: str
    sending_at: datetime | None
    accepted_at: datetime | None
    delivered_at: datetime | None
    sender: str | None
    send_max_attempts: int | None


def _synthesized_row(*, kind, sub_kind, channel, occurred_at, detail, dedupe_key, **_) -> _EventRow:
    return _EventRow(None, kind, sub_kind, channel, occurred_at, detail, dedupe_key)


def _by_notification(sql: str, notifications: list[Notification], line) -> dict[uuid.UUID, list]:
    by_notification: dict[uuid.UUID, list] = defaultdict(list)
    if not notifications:
        return by_notification
    [environment_id] = {notification.environment_id for notification in notifications}
    params = [
        [notification.id for notification in notifications],
        [notification.created_at for notification in notifications],
        environment_id,
    ]
    for notification_id, *values in prepared_rows(sql, params):
        by_notification[notification_id].append(line._make(values))
    return by_notification


def page_deliveries(*, notifications: list[Notification]) -> dict[uuid.UUID, list[DeliveryLine]]:
    """The deliveries of a page's notifications (already the tenant's), by notification id,
    in one prepared query (plain tuples: a page of 1,000 costs no model instances)."""
    return _by_notification(_PAGE_DELIVERIES, notifications, DeliveryLine)


def page_events(*, notifications: list[Notification]) -> dict[uuid.UUID, list[EventLine]]:
    """The timelines of a page's notifications, by notification id: their event rows and the
    events folded into them (logs.timeline), in two prepared queries."""
    rows = _by_notification(_PAGE_EVENTS, notifications, _EventRow)
    folded = _by_notification(_PAGE_FOLDED, notifications, _FoldedColumns)
    return {
        notification.id: [
            EventLine(event.kind, event.sub_kind, event.channel, event.occurred_at, event.detail)
            for event in timeline(
                notification,
                folded.get(notification.id, []),
                rows.get(notification.id, []),
                make=_synthesized_row,
            )
        ]
        for notification in notifications
    }


EXPORT_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "notification_type",
    "user_id",
    "email",
    "number",
    "status",
    "channels",
)


def export_queryset(*, environment_id: int, filters: NotificationFilters) -> QuerySet:
    """The export's rows as tuples of EXPORT_COLUMNS, newest first."""
    channels = ArraySubquery(
        Delivery.objects.filter(
            notification_id=OuterRef("id"),
            notification_created_at=OuterRef("created_at"),
            # The distribution column on Citus, as the constant it is: the subquery then runs
            # on the environment's shard with its notification (a correlation alone is not
            # enough for Citus to route it).
            environment_id=environment_id,
        )
        .order_by("channel")
        .values("channel")
    )
    return (
        notification_queryset(environment_id=environment_id, filters=filters.normalized())
        .annotate(channels=channels)
        .values_list(*EXPORT_COLUMNS)
    )


def export_rows(
    *, environment_id: int, filters: NotificationFilters, chunk_size: int = 2000
) -> Iterable[tuple]:
    """Every matching row, newest first, read in keyset chunks: each chunk is one query that
    starts after the last row of the one before ((created_at, id) below it), in its own short
    transaction. Nothing stays open while the client reads at its own pace: no transaction
    (which would hold back vacuum and make retention's DETACH give way) and no server-side
    cursor (which a pooler in transaction mode cannot keep). Memory stays at one chunk."""
    queryset = export_queryset(environment_id=environment_id, filters=filters)
    after = None
    while True:
        chunk = queryset
        if after is not None:
            chunk = chunk.filter(TupleLessThan(Tuple(F("created_at"), F("id")), after))
        rows = list(chunk[:chunk_size])
        yield from rows
        if len(rows) < chunk_size:
            return
        id_, created_at = rows[-1][:2]  # EXPORT_COLUMNS begins with id, created_at
        after = (created_at, id_)
