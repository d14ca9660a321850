"""What the event writer (logs.services.events_record) reads: the notifications it locks
(notifications_read), then their recorded events (recorded_events, as RecordedFact) and
their deliveries (deliveries_by_channel), each without the columns it never reads (UNREAD).
The condition on a batch's child rows is _CHILDREN_OF (children_reads): the ids and their
days' range (the logs API reads a page's children its own way: logs/api/search.py).

event_record runs for every provider callback. Its three reads (the lock, the events, the
deliveries) are the same statements every time: prepared once per connection, they skip
both the ORM's query compilation and PostgreSQL's planning."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from logs.citus import environment_groups
from logs.models import Delivery, Event, Notification
from logs.statements import prepared_instances, prepared_rows

# The rendered content (up to a megabyte, stored out of line): written by the event that
# carries it (Sending), never read by event_record, and so never written back by another.
_DELIVERY_CONTENT = frozenset(
    {"subject", "html", "text", "content_packed", "content_dictionary_id"}
)
# Columns event_record does not read: the content, and the notification's request and merge
# tags (up to a megabyte each, parsed on every read). The instances it gives back (and to the
# event_recorded receivers) have them deferred: reading one costs a query.
# Notification.request_template_id is read on its own.
UNREAD = {
    Delivery: _DELIVERY_CONTENT,
    Notification: frozenset({"request", "stored_merge_tags"}),
}

_SELECTS: dict[tuple, tuple[str, list[str]]] = {}


def _instances(model, where: str, params: list, **annotations: str) -> list:
    """Instances of `model` from `SELECT <its columns but UNREAD's> FROM <its table> WHERE
    <where>`, with `annotations` (attribute name: SQL expression) set on each."""
    key = (model, where, tuple(annotations.items()))
    if key not in _SELECTS:
        meta = model._meta
        fields = [f for f in meta.concrete_fields if f.attname not in UNREAD.get(model, ())]
        quote = connection.ops.quote_name
        columns = [quote(f.column) for f in fields] + list(annotations.values())
        sql = (
            f"SELECT {', '.join(columns)} "  # noqa: S608 (model metadata)
            f"FROM {quote(meta.db_table)} WHERE {where}"
        )
        _SELECTS[key] = (sql, [f.attname for f in fields])
    sql, attnames = _SELECTS[key]
    return prepared_instances(model, sql, params, attnames, annotations=list(annotations))


def notifications_read(where: str, params: list, fresh_for: list[uuid.UUID]) -> list[Notification]:
    # The receivers need the request's templateId (insights' rollups), not the request: the
    # one value goes over the wire and is parsed, not the whole JSON. The notifications in
    # `fresh_for` get a delivery id drawn from its sequence (fresh_delivery_id), the others
    # (and every notification of a batch without them: the callbacks') none.
    if not fresh_for:
        return _instances(Notification, where, params, request_template_id=_TEMPLATE_ID)
    return _instances(
        Notification, where, [fresh_for, *params], request_template_id=_TEMPLATE_ID,
        fresh_delivery_id=_FRESH_DELIVERY_ID,
    )  # fmt: skip


_FRESH_DELIVERY_ID = (
    "CASE WHEN id = ANY(%s::uuid[]) THEN nextval(pg_get_serial_sequence('logs_delivery', 'id')) END"
)


_TEMPLATE_ID = (
    "CASE WHEN jsonb_typeof(request -> 'templateId') = 'string' "
    "THEN request ->> 'templateId' ELSE '' END"
)


@dataclass(frozen=True)
class RecordedFact:
    """What the status rules and the dedupe check need of an event already recorded."""

    id: int | None
    kind: str
    sub_kind: str
    channel: str
    occurred_at: datetime
    dedupe_key: str
    # False: folded into the notification or its delivery, no row (logs/timeline.py).
    row: bool = True

    @classmethod
    def of(cls, event: Event, *, row: bool = True) -> "RecordedFact":
        return cls(event.id, event.kind, event.sub_kind, event.channel, event.occurred_at,
                   event.dedupe_key, row)  # fmt: skip


# The child rows (events, deliveries) of a batch's notifications: by notification id, and
# their days' range, which prunes the partitions. By notification id and days only: the
# unique (notification_id, dedupe_key, ...) and (notification_id, channel, ...) indexes answer
# it. With environment_id too PostgreSQL may pick the (environment_id, kind, ...) index and
# walk every event of those days.
_CHILDREN_OF = (
    "notification_id = ANY(%s::uuid[]) "
    "AND notification_created_at >= %s AND notification_created_at <= %s"
)
_RECORDED_EVENTS = (
    "SELECT notification_id, id, kind, sub_kind, channel, occurred_at, dedupe_key "
    "FROM logs_event WHERE "
)


def _children_params(notifications: list[Notification]) -> list:
    created = [notification.created_at for notification in notifications]
    return [[notification.id for notification in notifications], min(created), max(created)]


# On Citus the same, naming the notifications' one environment: a router query of one shard
# (the shard's planner still has the notification_id indexes for the ids).
_CHILDREN_OF_ENVIRONMENT = f"environment_id = %s AND {_CHILDREN_OF}"


def _children_of_environment_params(environment_id: int, notifications: list[Notification]):
    """_CHILDREN_OF_ENVIRONMENT's parameters: the notifications are all of `environment_id`."""
    return [environment_id, *_children_params(notifications)]


def children_reads(notifications: Iterable[Notification]) -> list[tuple[str, list]]:
    """How to read the child rows (events, deliveries) of `notifications`: [(the WHERE
    condition, its parameters)]. One statement for them all on plain PostgreSQL
    (_CHILDREN_OF); one per environment on Citus (_CHILDREN_OF_ENVIRONMENT)."""
    return [
        (_CHILDREN_OF, _children_params(group))
        if environment_id is None
        else (_CHILDREN_OF_ENVIRONMENT, _children_of_environment_params(environment_id, group))
        for environment_id, group in environment_groups(notifications, lambda n: n.environment_id)
    ]


def recorded_events(
    notifications: Iterable[Notification],
) -> dict[uuid.UUID, list[RecordedFact]]:
    """Every event of the notifications (a notification has a handful), in one query, read
    after the lock (a statement of its own, so it sees every event committed by whoever
    held it before)."""
    notifications = list(notifications)
    recorded: dict[uuid.UUID, list[RecordedFact]] = {n.id: [] for n in notifications}
    if not notifications:
        return recorded
    for where, params in children_reads(notifications):
        for notification_id, *fact in prepared_rows(_RECORDED_EVENTS + where, params):
            recorded[notification_id].append(RecordedFact(*fact))
    return recorded


def deliveries_by_channel(
    notifications: Iterable[Notification],
) -> dict[uuid.UUID, dict[str, Delivery]]:
    """The notifications' deliveries by channel, in one query (as recorded_events)."""
    notifications = list(notifications)
    deliveries: dict[uuid.UUID, dict[str, Delivery]] = {n.id: {} for n in notifications}
    if not notifications:
        return deliveries
    for where, params in children_reads(notifications):
        for delivery in _instances(Delivery, where, params):
            deliveries[delivery.notification_id][delivery.channel] = delivery
    return deliveries
