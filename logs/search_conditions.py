"""The conditions of a support search, as the ORM writes them: `notification_queryset` (the
filters on the notification table, with semi-joins for the channel and event filters) and
the child-table index ranges that drive a search newest first (`driving_branches`, read as
one ordered query by `candidates_sql`). Every condition is written so that a plan made once
for any value (a prepared statement) can use its index: logs.selectors chooses the strategy.

What the filters mean: different filters AND, the values of one filter OR. A filter that names
a delivery (a channel, a provider message id) makes the status and event filters speak of that
same delivery: "sms + failure" is a notification whose SMS failed (the channel's own status,
logs.status.delivery_status), "sms + Failed - Undelivered" one whose SMS has that event, not
one whose email failed beside a delivered SMS. Without one, a status is the whole
notification's and an event is any event of its timeline (a request-level one included).
"""

import operator
from collections.abc import Sequence
from dataclasses import replace
from functools import reduce

from django.db.models import BooleanField, CharField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.db.models.lookups import Lookup

from logs.models import Delivery, Event, Notification
from logs.search_filters import Cursor, NotificationFilters
from logs.status import delivery_states_of_status
from logs.vocabulary import (
    SUB_KINDS_BY_KIND,
    UNIVERSAL_EVENT_KINDS,
    DeliveryState,
    EventKind,
    NotificationStatus,
)

_KIND_OF_SUB_KIND = {sub: kind for kind, subs in SUB_KINDS_BY_KIND.items() for sub in subs}
# The conditions of the partial indexes (event_env_sub_kind, delivery_provider_msg,
# notif_env_status), as SQL text with no parameter: a search's
# plan is made once, for any value (a prepared statement), and may use such an index only
# when the query states its condition. The kind indexes (event_env_kind,
# event_env_channel_kind: the rare kinds only) are used when the kind itself is in the text
# (_kind_q).
_EMPTY = RawSQL("''", [], output_field=CharField())
_HAS_MESSAGE_ID = ~Q(provider_message_id=_EMPTY)
_HAS_SUB_KIND = ~Q(sub_kind=_EMPTY)
_SUCCESS = RawSQL("'success'", [], output_field=CharField())
_NOT_SUCCESS = ~Q(status=_SUCCESS)
assert NotificationStatus.SUCCESS == "success"


class _PatternCompare(Lookup):
    """`lhs OPERATOR rhs` with a text_pattern_ops operator: text compared byte by byte, in
    the order of such an index."""

    operator = ""

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} {self.operator} {rhs}", (*lhs_params, *rhs_params)


class _PatternAtLeast(_PatternCompare):
    operator = "~>=~"


class _PatternBelow(_PatternCompare):
    operator = "~<~"


def _email_prefix_range(prefix: str) -> Q:
    """lower(email) starts with `prefix`, written as the range [prefix, the next string after
    every one that starts with it) of the text_pattern_ops index on lower(email). A range reads
    the index whatever the values, so the search is prepared once like the others; LIKE
    'prefix%' reads an index range only with the prefix in the SQL text."""
    email = Lower("email")
    condition = Q(_PatternAtLeast(email, prefix))
    end = prefix_end(prefix)
    # None: every character is the last one, no string sorts after the range.
    return condition if end is None else condition & Q(_PatternBelow(email, end))


def prefix_end(prefix: str) -> str | None:
    """The first string after every string that starts with `prefix` (None: there is none)."""
    for position in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[position]) + 1
        code = 0xE000 if code == 0xD800 else code  # surrogates are not text
        if code <= 0x10FFFF:
            return prefix[:position] + chr(code)
    return None


def _in_or_eq(name: str, values: Sequence) -> Q:
    return Q(**{name: values[0]}) if len(values) == 1 else Q(**{f"{name}__in": list(values)})


def notification_queryset(*, environment_id: int, filters: NotificationFilters) -> QuerySet:
    """Notifications of the environment matching the filters on notification columns (and,
    as semi-joins, channel and event filters), newest first. Prefer `notification_page`,
    which drives child-table filters from their own indexes."""
    queryset = Notification.objects.filter(environment_id=environment_id)
    if filters.tracking_ids:
        queryset = queryset.filter(_in_or_eq("id", filters.tracking_ids))
    if filters.user_ids:
        queryset = queryset.filter(_in_or_eq("user_id", filters.user_ids))
    if filters.email:
        # Matches the expression index on lower(email) text_pattern_ops.
        queryset = queryset.alias(email_lower=Lower("email")).filter(email_lower=filters.email)
    if filters.email_prefix:
        queryset = queryset.filter(_email_prefix_range(filters.email_prefix))
    if filters.number:
        queryset = queryset.filter(number=filters.number)
    if filters.notification_types:
        queryset = queryset.filter(_in_or_eq("notification_type", filters.notification_types))
    if filters.statuses and not _names_a_delivery(filters):
        if list(filters.statuses) == [NotificationStatus.SUCCESS]:
            # Most rows: found in about a page of notif_env_created. The word in the SQL text
            # tells the plan (made once, for any values) so, from the statistics.
            queryset = queryset.filter(status=_SUCCESS)
        else:
            queryset = queryset.filter(_in_or_eq("status", filters.statuses))
        if NotificationStatus.SUCCESS not in filters.statuses:
            # Rare statuses: notif_env_status (partial) holds them.
            queryset = queryset.filter(_NOT_SUCCESS)
    if filters.created_from:
        queryset = queryset.filter(created_at__gte=filters.created_from)
    if filters.created_to:
        queryset = queryset.filter(created_at__lt=filters.created_to)
    # Each names the environment too: on Citus (the log distributed by environment) a
    # subquery joined on it runs beside its notification, on the same shard.
    same_notification = {
        "notification_id": OuterRef("id"),
        "notification_created_at": OuterRef("created_at"),
        "environment_id": OuterRef("environment_id"),
    }
    if _names_a_delivery(filters):
        # One delivery must match them all: its channel, message id, status and an event.
        deliveries = Delivery.objects.filter(_delivery_q(filters), **same_notification)
        if filters.event_kind or filters.event_sub_kind:
            deliveries = deliveries.filter(_delivery_has_event(filters, environment_id))
        queryset = queryset.filter(Exists(deliveries))
    elif filters.event_kind or filters.event_sub_kind:
        # Checked for each notification the index gives, newest first (a universal kind: most
        # have it), or for each candidate of a child-driven search.
        queryset = queryset.filter(_notification_has_event(filters, environment_id))
    return queryset.order_by("-created_at", "-id")


_FALSE = RawSQL("false", [], output_field=BooleanField())


def _delivery_has_event(filters: NotificationFilters, environment_id: int) -> Q:
    """The delivery (the row this Q filters) has an event of the filters' kind or sub-kind: a
    row of it, or, for the pipeline's own kinds, an event folded into its columns
    (logs.timeline). A Sent sets `sent_at` (the earliest Sent, whoever reported it) and a
    Delivered that decided the state `delivered_at`, so the columns answer first and the
    rows are probed only when they do not (older days, a later Failed): Sending's rows stay
    for attempts after the first and the days before logs 0020, Delivered's for a delivery
    a later failure took back. A Received is never a channel's."""
    rows = _EachRow(_events(filters).filter(**{**_SAME_DELIVERY, **_on_shard(environment_id)}))
    if not _universal_kind(filters):
        return Q(rows)
    kind = filters.event_kind
    if kind == EventKind.RECEIVED:
        return Q(_FALSE)
    if kind == EventKind.SENT:
        return Q(sent_at__isnull=False)
    column = "sending_at" if kind == EventKind.SENDING else "delivered_at"
    return Q(**{f"{column}__isnull": False}) | Q(rows)


def _notification_has_event(filters: NotificationFilters, environment_id: int) -> Q:
    """The notification (the row this Q filters) has an event of the filters' kind or
    sub-kind, checked by its key: a row, or for the pipeline's own kinds one of its
    deliveries has it (_delivery_has_event: every such event is a channel's); every
    notification has a Received."""
    same_notification = {
        "notification_id": OuterRef("id"),
        "notification_created_at": OuterRef("created_at"),
        "environment_id": environment_id,  # on Citus: _on_shard
    }
    if not _universal_kind(filters):
        return Q(_EachRow(_events(filters).filter(**same_notification)))
    if filters.event_kind == EventKind.RECEIVED:
        return Q()
    deliveries = Delivery.objects.filter(**same_notification).filter(
        _delivery_has_event(filters, environment_id)
    )
    return Q(_EachRow(deliveries))


# An event of the delivery in the outer query: same notification, same channel.
_SAME_DELIVERY = {
    "notification_id": OuterRef("notification_id"),
    "notification_created_at": OuterRef("notification_created_at"),
    "environment_id": OuterRef("environment_id"),
    "channel": OuterRef("channel"),
}


def _names_a_delivery(filters: NotificationFilters) -> bool:
    """Whether the status and event filters speak of one delivery (see the module)."""
    return bool(filters.channels or filters.provider_message_id)


def _delivery_q(filters: NotificationFilters) -> Q:
    """The conditions on the delivery row itself: channel, message id, the channel's status."""
    condition = Q()
    if filters.channels:
        condition &= _in_or_eq("channel", filters.channels)
    if filters.provider_message_id:
        condition &= Q(provider_message_id=filters.provider_message_id)
    if filters.statuses:
        condition &= _delivery_status_q(filters.statuses)
    return condition


def _delivery_states(statuses: Sequence[str]) -> list[tuple[str, bool]]:
    """The (state, reports_delivery) pairs of deliveries whose own status is one of these."""
    pairs = (pair for status in statuses for pair in delivery_states_of_status(status))
    return list(dict.fromkeys(pairs))


def _delivery_status_q(statuses: Sequence[str]) -> Q:
    return reduce(
        operator.or_,
        (Q(state=state, reports_delivery=reports) for state, reports in _delivery_states(statuses)),
    )


def _events(filters: NotificationFilters) -> QuerySet:
    if filters.event_sub_kind:
        # A sub-kind belongs to one kind: its own index answers, and a kind that contradicts
        # it matches nothing.
        if filters.event_kind and filters.event_kind != _KIND_OF_SUB_KIND.get(
            filters.event_sub_kind
        ):
            return Event.objects.none()
        return Event.objects.filter(_HAS_SUB_KIND, sub_kind=filters.event_sub_kind)
    return Event.objects.filter(_kind_q(filters.event_kind))


def _on_shard(environment_id: int) -> dict:
    """An _EachRow subquery names the environment itself, not through its outer row: kept
    apart by OFFSET 0, Citus does not see that the outer row's environment is the search's,
    and refuses the statement (a join it cannot route) where a plain EXISTS ran on one shard."""
    return {"environment_id": environment_id}


class _EachRow(Exists):
    """EXISTS checked for each outer row in the order its index gives them (a subplan probed by
    the row's key), never turned into a join. PostgreSQL would join the semi-join's inner
    side instead when it guesses few outer rows match: it takes the notification's id and day
    as independent conditions, so it guessed "sms + Sent" at 137 of 3,298 deliveries and read
    and sorted every sms delivery and every event of the environment for one page (a plan
    made once for any values, PostgreSQL 15). OFFSET 0 keeps the subquery as it is."""

    template = "EXISTS(%(subquery)s OFFSET 0)"


def _word(value: str, vocabulary) -> RawSQL:
    """A word of logs/vocabulary.py as SQL text, not a parameter (see _HAS_SUB_KIND)."""
    if value not in vocabulary.values:  # the text takes no other
        raise ValueError(f"{value!r} is not one of {vocabulary.__name__}.")
    return RawSQL(f"'{value}'", [], output_field=CharField())  # noqa: S611 (a checked word)


def _kind_q(kind: str) -> Q:
    """kind = 'the kind', the word written in the SQL text: from it a plan made once for any
    values knows that a rare kind is in the partial kind indexes (their condition: not one
    of UNIVERSAL_EVENT_KINDS), and how many rows the kind has (the statistics)."""
    return Q(kind=_word(kind, EventKind))


def _universal_kind(filters: NotificationFilters) -> bool:
    """Whether the event filter is a kind nearly every notification (or delivery) has: not
    in the kind indexes; found by checking the newest notifications or deliveries."""
    return filters.event_kind in UNIVERSAL_EVENT_KINDS and not filters.event_sub_kind


def before(cursor: Cursor | None, created: str, id_: str) -> Q:
    """Rows after the cursor in newest-first order: (created, id) < (cursor.created_at,
    cursor.id). The first term is the index range, the rest only re-checks the rows that share
    the cursor's instant, so the plan stays one index range scan."""
    if cursor is None:
        return Q()
    return Q(**{f"{created}__lte": cursor.created_at}) & (
        Q(**{f"{created}__lt": cursor.created_at}) | Q(**{f"{id_}__lt": cursor.id})
    )


def driving_branches(
    environment_id: int, filters: NotificationFilters
) -> tuple[list[QuerySet], NotificationFilters] | None:
    """The child-table index ranges that yield this search's notifications newest first (one
    per channel, or per channel and delivery state, when several are asked for: each is one
    ordered index range, where an IN over them would have to sort), and the filters left for
    the notifications themselves; None when the notification table's own indexes serve the
    search best.

    When the status and event filters speak of one delivery (a channel or a message id is
    given), each branch states all of them for its rows: the index gives one of them, and a
    row the index gives is checked for the rest on its own delivery (a lookup by key), so
    the notifications are left only their own filters."""
    if filters.tracking_ids:
        return None  # a handful of primary-key lookups beats any scan
    events = bool(filters.event_kind or filters.event_sub_kind)
    rest = replace(
        filters,
        channels=(),
        provider_message_id="",
        event_kind="",
        event_sub_kind="",
        statuses=() if _names_a_delivery(filters) else filters.statuses,
    )
    if filters.provider_message_id:
        # The delivery row states its channel and status itself.
        delivery = Delivery.objects.filter(
            _HAS_MESSAGE_ID, _delivery_q(filters), provider_message_id=filters.provider_message_id
        )
        if events:
            delivery = delivery.filter(_delivery_has_event(filters, environment_id))
        driving = [delivery]
    elif filters.channels and _universal_kind(filters):
        # Nearly every delivery of the channel has the event: its deliveries newest first
        # (one range per channel, or per channel and delivery state), each checked for the
        # event on its own columns, and where they do not say, by its notification's key
        # (event_unique_dedupe), stopping after a page.
        has_event = _delivery_has_event(filters, environment_id)
        driving = [
            Delivery.objects.filter(has_event, condition)
            for condition in _delivery_ranges(filters, state_written=True)
        ]
    elif filters.channels and events:
        driving = []
        for channel in filters.channels:
            branch = _events(filters).filter(channel=channel)
            if filters.statuses:
                deliveries = Delivery.objects.filter(
                    _delivery_status_q(filters.statuses),
                    notification_id=OuterRef("notification_id"),
                    notification_created_at=OuterRef("notification_created_at"),
                    environment_id=OuterRef("environment_id"),
                    channel=channel,
                )
                branch = branch.filter(Exists(deliveries))
            driving.append(branch)
    elif filters.channels:
        driving = [Delivery.objects.filter(condition) for condition in _delivery_ranges(filters)]
    elif events and not _universal_kind(filters):
        driving = [_events(filters)]
    else:
        # Notification filters only, or a universal kind without a channel: the newest
        # notifications, each checked for the event by its key (event_unique_dedupe).
        return None
    dates = Q(environment_id=environment_id)
    if filters.created_from:
        dates &= Q(notification_created_at__gte=filters.created_from)
    if filters.created_to:
        dates &= Q(notification_created_at__lt=filters.created_to)
    return [branch.filter(dates) for branch in driving], rest


def _delivery_ranges(filters: NotificationFilters, *, state_written: bool = False) -> list[Q]:
    """The ranges of the delivery indexes that hold the deliveries of these channels (and
    statuses): one per channel (delivery_env_channel), or per channel and delivery state
    (delivery_env_channel_state); each is read in order. `state_written`: the state as a word
    in the SQL text, so the plan knows from the statistics how many rows the range has (a
    range checked row by row for an event: guessed small, it was read whole and sorted)."""
    if not filters.statuses:
        return [Q(channel=channel) for channel in filters.channels]
    return [
        Q(channel=channel, reports_delivery=reports)
        & Q(state=_word(state, DeliveryState) if state_written else state)
        for channel in filters.channels
        for state, reports in _delivery_states(filters.statuses)
    ]


def candidates_sql(
    branches: list[QuerySet], after: Cursor | None, count: int, *, count_as_parameter: bool
) -> tuple[str, list]:
    """SQL for the newest `count` distinct (created_at, id) of notifications the branches
    name, after the cursor, newest first, and its parameters. Each branch reads one index
    range and stops after `count`; several branches are merged in order (Merge Append), so
    nothing is sorted and no more than `count` rows per branch are read.

    The statement is prepared and planned once for any values (logs.statements). For the
    filtered search's rounds `count` is a parameter, whose generic plan takes LIMIT as a
    tenth of the rows and so reads the index in order and stops early: with the number in
    the text the planner weighed it against its generic guess of the range (a channel, a
    kind and a cursor given: a few hundred rows), found the round to be most of it, and read
    and sorted the whole range (6,675 rows) each round. A page's keys (logs.selectors) keep
    the number: there a tenth of the range made the planner join every notification of the
    day by hash instead of looking a page of them up (PostgreSQL 18)."""
    limit = "%s" if count_as_parameter else str(int(count))
    parts, params = [], []
    for branch in branches:
        sql, branch_params = (
            branch.filter(before(after, "notification_created_at", "notification_id"))
            .order_by("-notification_created_at", "-notification_id")
            .values_list("notification_created_at", "notification_id")
            .distinct()
            .query.sql_with_params()
        )
        parts.append(f"({sql} LIMIT {limit})")
        params.extend([*branch_params, count] if count_as_parameter else branch_params)
    if len(parts) == 1:
        return parts[0], params
    # Django cannot express DISTINCT over a UNION; the SQL is Django's own, values are params.
    merged = " UNION ALL ".join(parts)
    return (
        f'SELECT * FROM ({merged}) AS "merged" ("created_at", "id") '  # noqa: S608
        f"GROUP BY 1, 2 ORDER BY 1 DESC, 2 DESC LIMIT {limit}",
        [*params, count] if count_as_parameter else params,
    )
