"""Reads of the log for support search and the logs API.

Every selector takes the tenant (an environment id) and reads newest first with keyset
pagination on (created_at, id), so page 1,000 costs what page 1 does and nothing counts the
table. Each filter is served by an index that starts with the environment and ends with the
newest-first order (see logs/models.py).

What the filters mean: different filters AND, the values of one filter OR. A filter that names
a delivery (a channel, a provider message id) makes the status and event filters speak of that
same delivery: "sms + failure" is a notification whose SMS failed (the channel's own status,
logs.status.delivery_status), "sms + Failed - Undelivered" one whose SMS has that event, not
one whose email failed beside a delivered SMS. Without one, a status is the whole
notification's and an event is any event of its timeline (a request-level one included).

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
"""

import base64
import functools
import itertools
import operator
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from functools import reduce

from django.db.models import BooleanField, CharField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.db.models.lookups import Lookup

from logs.content import deliveries_content
from logs.models import Delivery, Event, Notification
from logs.phone import phone_normalize
from logs.statements import prepared_instances, prepared_rows
from logs.status import delivery_states_of_status
from logs.timeline import timeline
from logs.vocabulary import (
    SUB_KINDS_BY_KIND,
    UNIVERSAL_EVENT_KINDS,
    Channel,
    DeliveryState,
    EventKind,
    EventSubKind,
    NotificationStatus,
)

PAGE_SIZE_MAX = 1000
# Every column of a notification: what a page reads unless its caller names fewer.
NOTIFICATION_FIELDS = tuple(field.attname for field in Notification._meta.concrete_fields)
EMAIL_PREFIX_MIN = 3
# A child-driven search whose other filters reject candidates reads this many pages' worth
# of candidates per round, for at most this many rounds per page: the work a page may cost is
# bounded, and a page that stopped early says so (NotificationPage.stopped_early).
_CANDIDATES_PER_ROUND = 4
SEARCH_BUDGET_ROUNDS = 10
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


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: the last row's (created_at, id). Opaque to callers."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        try:
            padded = token + "=" * (-len(token) % 4)
            created_at, _, id_ = base64.urlsafe_b64decode(padded).decode().partition("|")
            cursor = cls(datetime.fromisoformat(created_at), uuid.UUID(id_))
        except ValueError:
            raise ValueError(
                "The page cursor is not valid: pass back the nextToken of the previous page "
                "unchanged, or leave it out for the first page."
            ) from None
        if cursor.created_at.tzinfo is None:
            raise ValueError("The page cursor is not valid: it has no time zone.")
        return cursor


@dataclass(frozen=True)
class NotificationFilters:
    """What support or an integrator searches by. Different fields AND; the values of one
    sequence OR. Empty means no filter."""

    tracking_ids: Sequence[uuid.UUID | str] = ()
    user_ids: Sequence[str] = ()
    email: str = ""  # exact, case-insensitive
    email_prefix: str = ""  # case-insensitive, at least EMAIL_PREFIX_MIN characters
    number: str = ""  # any spelling; compared in E.164
    provider_message_id: str = ""
    notification_types: Sequence[str] = ()
    statuses: Sequence[str] = ()
    channels: Sequence[str] = ()
    event_kind: str = ""
    event_sub_kind: str = ""
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive

    def normalized(self) -> "NotificationFilters":
        """The same filters checked and in stored form; ValueError says what to fix."""
        for name in ("tracking_ids", "user_ids", "notification_types", "statuses", "channels"):
            if isinstance(getattr(self, name), str | bytes):
                raise ValueError(f"{name} takes a list of values, not a single string.")
        tracking_ids = []
        for value in self.tracking_ids:
            try:
                tracking_ids.append(value if isinstance(value, uuid.UUID) else uuid.UUID(value))
            except ValueError:
                raise ValueError(f"Tracking id {value!r} is not a UUID.") from None
        prefix = self.email_prefix.strip().lower()
        if prefix and len(prefix) < EMAIL_PREFIX_MIN:
            raise ValueError(
                f"An email prefix needs at least {EMAIL_PREFIX_MIN} characters "
                f"(got {prefix!r}); type more of the address."
            )
        _check_choices("status", [s.lower() for s in self.statuses], NotificationStatus)
        _check_choices("channel", self.channels, Channel)
        _check_choices("event kind", [self.event_kind] if self.event_kind else [], EventKind)
        sub_kinds = [self.event_sub_kind] if self.event_sub_kind else []
        _check_choices("event sub-kind", sub_kinds, EventSubKind)
        if self.created_from and self.created_to and self.created_from >= self.created_to:
            raise ValueError("The date range is empty: its start must be before its end.")
        return NotificationFilters(
            tracking_ids=tuple(tracking_ids),
            user_ids=tuple(self.user_ids),
            email=self.email.strip().lower(),
            email_prefix=prefix,
            number=phone_normalize(self.number) if self.number.strip() else "",
            provider_message_id=self.provider_message_id.strip(),
            notification_types=tuple(self.notification_types),
            statuses=tuple(s.lower() for s in self.statuses),
            channels=tuple(self.channels),
            event_kind=self.event_kind,
            event_sub_kind=self.event_sub_kind,
            created_from=self.created_from,
            created_to=self.created_to,
        )


def _check_choices(what: str, values: Sequence[str], choices) -> None:
    unknown = [value for value in values if value not in choices.values]
    if unknown:
        raise ValueError(
            f"Unknown {what} {', '.join(map(repr, unknown))}: use one of "
            f"{', '.join(repr(v) for v in choices.values if v)}."
        )


@dataclass
class NotificationPage:
    notifications: list[Notification] = field(default_factory=list)
    # Set when more rows may follow; pass it back as `after` for the next page.
    next_cursor: Cursor | None = None
    # A page is full (`limit` rows) unless the matches ran out, or the search used up its
    # budget: then `stopped_early` is True, the page may be short or even empty, and
    # `searched_back_to` says how far back it looked (notifications created at or after it
    # were all examined); `next_cursor` continues from there.
    stopped_early: bool = False
    searched_back_to: datetime | None = None


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
    end = _prefix_end(prefix)
    # None: every character is the last one, no string sorts after the range.
    return condition if end is None else condition & Q(_PatternBelow(email, end))


def _prefix_end(prefix: str) -> str | None:
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


def _before(cursor: Cursor | None, created: str, id_: str) -> Q:
    """Rows after the cursor in newest-first order: (created, id) < (cursor.created_at,
    cursor.id). The first term is the index range, the rest only re-checks the rows that share
    the cursor's instant, so the plan stays one index range scan."""
    if cursor is None:
        return Q()
    return Q(**{f"{created}__lte": cursor.created_at}) & (
        Q(**{f"{created}__lt": cursor.created_at}) | Q(**{f"{id_}__lt": cursor.id})
    )


def _driving_branches(
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


def _candidates_sql(
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
    and sorted the whole range (6,675 rows) each round. A page's keys (`_page_of_keys`) keep
    the number: there a tenth of the range made the planner join every notification of the
    day by hash instead of looking a page of them up (PostgreSQL 18)."""
    limit = "%s" if count_as_parameter else str(int(count))
    parts, params = [], []
    for branch in branches:
        sql, branch_params = (
            branch.filter(_before(after, "notification_created_at", "notification_id"))
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
    queryset = queryset.filter(_before(after, "created_at", "id"))
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
    candidates = _candidates_sql(branches, after, limit + 1, count_as_parameter=False)
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
            *_cached_statement(_candidates_statement, environment_id, filters, position, batch)
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
    branches, _rest = _driving_branches(environment_id, filters)
    return _candidates_sql(branches, after, count, count_as_parameter=True)


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
    statement = _cached_statement(_page_statement, environment_id, filters, after, limit, fields)
    if statement is _NO_PAGE:
        return NotificationPage()  # e.g. a sub-kind with a kind it does not belong to
    if statement is _IN_ROUNDS:
        _, rest = _driving_branches(environment_id, filters)
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
    driving = _driving_branches(environment_id, filters)
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


# -- one SQL text per shape of search ----------------------------------------------------------
#
# A search's SQL is the same text for every search of its shape: which filters are given, how
# many values each list has, the statuses, channels and event kinds (they choose the indexes
# and are written in the text), whether a cursor is given, the page size and the columns. Its
# other values (the environment, ids, addresses, numbers, dates, the cursor) are only bound.
# Building that text through the ORM was about a third of a list request's CPU: it is built
# once per shape, with stand-in values ("markers"), and each search binds its own values in
# the markers' places. It is built twice, with two sets of markers, and cached only if both
# texts are the same and every parameter is either a marker in the same place or the same
# constant: a value that changed the text, or that the ORM transformed on its way to a
# parameter, leaves that shape uncached (built per search, as before).

# The values only bound, in the order of a search's atoms (the environment id first).
_BOUND_LISTS = ("tracking_ids", "user_ids", "notification_types")
_BOUND_SCALARS = (
    "email", "email_prefix", "number", "provider_message_id", "created_from", "created_to",
)  # fmt: skip
_DATES = {"created_from", "created_to"}
# Filters written in the text: part of the shape.
_SHAPE_FILTERS = ("statuses", "channels", "event_kind", "event_sub_kind")
# A new filter must be one or the other, or a cached statement would leave it out.
assert {f.name for f in dataclass_fields(NotificationFilters)} == {
    *_BOUND_LISTS,
    *_BOUND_SCALARS,
    *_SHAPE_FILTERS,
}, "logs/selectors.py: add the new filter to _BOUND_LISTS, _BOUND_SCALARS or _SHAPE_FILTERS"
_MARKER_TIME = datetime(1901, 1, 1, tzinfo=UTC)


def _search_shape(
    environment_id: int, filters: NotificationFilters, after: Cursor | None
) -> tuple[tuple, list] | None:
    """The shape of a search (normalized filters) and its atoms, the values it binds; None
    for a search whose text depends on a value in a way the shape does not say (a prefix of
    only the last code point)."""
    atoms: list = [environment_id]
    counts = []
    for name in _BOUND_LISTS:
        values = getattr(filters, name)
        counts.append(len(values))
        atoms.extend(values)
    given = []
    for name in _BOUND_SCALARS:
        value = getattr(filters, name)
        given.append(bool(value))
        if value:
            atoms.append(value)
    if filters.email_prefix:
        end = _prefix_end(filters.email_prefix)
        if end is None:
            return None
        atoms.append(end)  # the range's end: a parameter derived from the prefix
    if after is not None:
        atoms.extend((after.created_at, after.id))
    written = tuple(getattr(filters, name) for name in _SHAPE_FILTERS)
    return (tuple(counts), tuple(given), written, after is not None), atoms


def _search_of(shape: tuple, atoms: Sequence) -> tuple[int, NotificationFilters, Cursor | None]:
    """The search of this shape with these atoms: _search_shape's inverse."""
    counts, given, written, has_after = shape
    values = iter(atoms)
    environment_id = next(values)
    lists = {
        name: tuple(itertools.islice(values, count))
        for name, count in zip(_BOUND_LISTS, counts, strict=True)
    }
    scalars = {
        name: next(values) if present else (None if name in _DATES else "")
        for name, present in zip(_BOUND_SCALARS, given, strict=True)
    }
    if scalars["email_prefix"]:
        next(values)  # its end: the search derives it from the prefix
    after = Cursor(next(values), next(values)) if has_after else None
    filters = NotificationFilters(
        **lists, **scalars, **dict(zip(_SHAPE_FILTERS, written, strict=True))
    )
    return environment_id, filters, after


def _markers(shape: tuple, series: int) -> list:
    """Atoms for a search of this shape that no search binds, each different (and different
    in each series): found again among the parameters of the SQL built with them."""
    counts, given, *_, has_after = shape
    number = itertools.count(1)

    def text() -> str:
        return f"\ue000{series}.{next(number)}\ue000"  # private-use characters

    def key() -> uuid.UUID:
        return uuid.UUID(int=(series << 64) + next(number))

    def moment() -> datetime:
        return _MARKER_TIME + timedelta(days=series, microseconds=next(number))

    atoms: list = [-1_000_000 * series - next(number)]  # in any integer column's range
    atoms.extend(key() for _ in range(counts[0]))
    atoms.extend(text() for _ in range(counts[1] + counts[2]))
    prefix = None
    for name, present in zip(_BOUND_SCALARS, given, strict=True):
        if present:
            atoms.append(moment() if name in _DATES else text())
            prefix = atoms[-1] if name == "email_prefix" else prefix
    if prefix is not None:
        atoms.append(_prefix_end(prefix))
    if has_after:
        atoms.extend((moment(), key()))
    return atoms


@dataclass(frozen=True)
class _Template:
    sql: str
    # Per parameter: (True, index of the atom) or (False, a constant).
    slots: tuple[tuple[bool, object], ...]

    def bind(self, atoms: Sequence) -> list:
        return [atoms[value] if is_atom else value for is_atom, value in self.slots]


@functools.lru_cache(maxsize=1024)
def _template(build, shape: tuple, args: tuple):
    """What `build` makes for searches of this shape: a _Template, the same non-statement
    answer for any values (e.g. _NO_PAGE), or None when its text depends on the values."""
    built = []
    for series in (1, 2):
        markers = _markers(shape, series)
        built.append((build(*_search_of(shape, markers), *args), markers))
    (first, markers), (second, other_markers) = built
    if not isinstance(first, tuple):
        return first if first == second else None
    (sql, params), (other_sql, other_params) = first, second
    if sql != other_sql or len(params) != len(other_params):
        return None
    where = {marker: index for index, marker in enumerate(markers)}
    other_where = {marker: index for index, marker in enumerate(other_markers)}
    slots = []
    for param, other in zip(params, other_params, strict=True):
        index = where.get(param) if isinstance(param, Hashable) else None
        other_index = other_where.get(other) if isinstance(other, Hashable) else None
        if index is not None or other_index is not None:
            if index != other_index:
                return None
            slots.append((True, index))
        elif param == other:
            slots.append((False, param))
        else:
            return None  # a value the ORM transformed: not found, and different
    return _Template(sql, tuple(slots))


def _cached_statement(build, environment_id: int, filters: NotificationFilters, after, *args):
    """build(environment_id, filters, after, *args) (a statement, or another answer that
    depends only on the search's shape), its SQL built once per shape (see above)."""
    search = _search_shape(environment_id, filters, after)
    template = _template(build, search[0], args) if search is not None else None
    if template is None:
        return build(environment_id, filters, after, *args)
    if isinstance(template, _Template):
        return template.sql, template.bind(search[1])
    return template


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
