"""Reads of the log for support search and the logs API.

Every selector takes the tenant (an environment id) and reads newest first with keyset
pagination on (created_at, id), so page 1,000 costs what page 1 does and nothing counts the
table. Each filter is served by an index that starts with the environment and ends with the
newest-first order (see logs/models.py):

- notification columns (tracking id, user id, email, phone number, type, status, dates):
  one index scan on logs_notification, stopping after one page;
- channel, event kind/sub-kind and provider message id live on deliveries and events: their
  index gives the notification ids newest first (driving), and the page's notifications are
  then fetched by primary key within the partitions those ids fall in.
"""

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db.models import BooleanField, Exists, F, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.db.models.functions import Lower

from logs.models import Delivery, Event, Notification
from logs.phone import phone_normalize
from logs.vocabulary import (
    SUB_KINDS_BY_KIND,
    Channel,
    EventKind,
    EventSubKind,
    NotificationStatus,
)

PAGE_SIZE_MAX = 1000
EMAIL_PREFIX_MIN = 3
# A driving scan fetches this many candidate ids per round, times the page size, and gives
# up after this many rounds when other filters keep rejecting candidates (a short page with a
# next cursor, never a scan of the whole table).
_DRIVE_FACTOR = 2
_DRIVE_ROUNDS = 8
_KIND_OF_SUB_KIND = {sub: kind for kind, subs in SUB_KINDS_BY_KIND.items() for sub in subs}


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
    if filters.email or filters.email_prefix:
        # Matches the expression index on lower(email) text_pattern_ops.
        queryset = queryset.alias(email_lower=Lower("email"))
        if filters.email:
            queryset = queryset.filter(email_lower=filters.email)
        if filters.email_prefix:
            queryset = queryset.filter(email_lower__startswith=filters.email_prefix)
    if filters.number:
        queryset = queryset.filter(number=filters.number)
    if filters.notification_types:
        queryset = queryset.filter(_in_or_eq("notification_type", filters.notification_types))
    if filters.statuses:
        queryset = queryset.filter(_in_or_eq("status", filters.statuses))
    if filters.created_from:
        queryset = queryset.filter(created_at__gte=filters.created_from)
    if filters.created_to:
        queryset = queryset.filter(created_at__lt=filters.created_to)
    same_notification = {
        "notification_id": OuterRef("id"),
        "notification_created_at": OuterRef("created_at"),
    }
    if filters.channels:
        deliveries = Delivery.objects.filter(
            _in_or_eq("channel", filters.channels), **same_notification
        )
        queryset = queryset.filter(Exists(deliveries))
    if filters.provider_message_id:
        deliveries = Delivery.objects.filter(
            provider_message_id=filters.provider_message_id, **same_notification
        )
        queryset = queryset.filter(Exists(deliveries))
    if filters.event_kind or filters.event_sub_kind:
        queryset = queryset.filter(Exists(_events(filters).filter(**same_notification)))
    return queryset.order_by("-created_at", "-id")


def _events(filters: NotificationFilters) -> QuerySet:
    if filters.event_sub_kind:
        # A sub-kind belongs to one kind: its own index answers, and a kind that contradicts
        # it matches nothing.
        if filters.event_kind and filters.event_kind != _KIND_OF_SUB_KIND.get(
            filters.event_sub_kind
        ):
            return Event.objects.none()
        return Event.objects.filter(sub_kind=filters.event_sub_kind)
    return Event.objects.filter(kind=filters.event_kind)


def _before(cursor: Cursor | None, created: str, id_: str) -> Q:
    if cursor is None:
        return Q()
    return Q(TupleLessThan(Tuple(F(created), F(id_)), (cursor.created_at, cursor.id)))


def _driving(
    environment_id: int, filters: NotificationFilters
) -> tuple[QuerySet | None, NotificationFilters]:
    """The child-table index that yields this search's notification ids newest first, and
    the filters left for the notifications themselves; (None, filters) when the notification
    table's own indexes serve the search best."""
    if filters.tracking_ids:
        return None, filters  # a handful of primary-key lookups beats any scan
    if filters.provider_message_id:
        driving = Delivery.objects.filter(provider_message_id=filters.provider_message_id)
        rest = replace(filters, provider_message_id="")
    elif filters.event_kind or filters.event_sub_kind:
        driving = _events(filters)
        rest = replace(filters, event_kind="", event_sub_kind="")
    elif filters.channels:
        driving = Delivery.objects.filter(_in_or_eq("channel", filters.channels))
        rest = replace(filters, channels=())
    else:
        return None, filters
    driving = driving.filter(environment_id=environment_id)
    if filters.created_from:
        driving = driving.filter(notification_created_at__gte=filters.created_from)
    if filters.created_to:
        driving = driving.filter(notification_created_at__lt=filters.created_to)
    return driving.order_by("-notification_created_at", "-notification_id"), rest


def notification_page(
    *,
    environment_id: int,
    filters: NotificationFilters = NotificationFilters(),
    after: Cursor | None = None,
    limit: int = 50,
) -> NotificationPage:
    """One page of the environment's notifications matching `filters`, newest first."""
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise ValueError(f"The page size must be between 1 and {PAGE_SIZE_MAX} (got {limit}).")
    filters = filters.normalized()
    driving, rest = _driving(environment_id, filters)
    if driving is None:
        queryset = notification_queryset(environment_id=environment_id, filters=filters)
        rows = list(queryset.filter(_before(after, "created_at", "id"))[: limit + 1])
        return _page(rows, limit)
    if driving.query.is_empty():
        return NotificationPage()  # e.g. a sub-kind with a kind it does not belong to

    if _dates_only(rest):
        # Every candidate matches: one query reads a page plus one from the child index and
        # fetches those notifications by their full key (id, created_at), which lets
        # PostgreSQL prune partitions while it runs.
        candidates = (
            driving.filter(_before(after, "notification_created_at", "notification_id"))
            .values_list("notification_id", "notification_created_at")
            .distinct()[: limit + 1]
        )
        sql, params = candidates.query.sql_with_params()
        # Django has no two-column IN (subquery); the SQL is Django's own, values are params.
        in_page = RawSQL(  # noqa: S611
            f'("logs_notification"."id", "logs_notification"."created_at") IN ({sql})',
            params,
            output_field=BooleanField(),
        )
        rows = list(Notification.objects.filter(environment_id=environment_id).filter(in_page))
        return _page(rows, limit)

    # Other filters will reject some candidates: read ahead in rounds.
    batch = limit * _DRIVE_FACTOR
    matched: list[Notification] = []
    position = after
    for _ in range(_DRIVE_ROUNDS):
        candidates = list(
            driving.filter(_before(position, "notification_created_at", "notification_id"))
            .values_list("notification_created_at", "notification_id")
            .distinct()[:batch]
        )
        if candidates:
            oldest, newest = candidates[-1][0], candidates[0][0]
            found = (
                notification_queryset(environment_id=environment_id, filters=rest)
                .filter(
                    id__in=[notification_id for _, notification_id in candidates],
                    # The partition key: only the partitions of these candidates are read.
                    created_at__gte=oldest,
                    created_at__lte=newest,
                )
                .order_by()  # sorted below; lets PostgreSQL probe the keys in any order
            )
            matched.extend(found)
            position = Cursor(*candidates[-1])
        if len(matched) > limit or len(candidates) < batch:
            return _page(matched, limit)
    # Other filters rejected most candidates: answer what was found with a cursor at the
    # last candidate examined, so the next page resumes there instead of scanning on.
    page = _page(matched, limit)
    page.next_cursor = position
    return page


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


def notification_timeline(*, notification: Notification) -> QuerySet:
    """The notification's events in the order they happened."""
    return Event.objects.filter(
        notification_id=notification.id, notification_created_at=notification.created_at
    ).order_by("occurred_at", "id")


def notification_deliveries(*, notification: Notification) -> QuerySet:
    return Delivery.objects.filter(
        notification_id=notification.id, notification_created_at=notification.created_at
    ).order_by("channel")
