"""What a support search (logs.selectors.notification_page) takes and gives: its filters
(NotificationFilters, checked and put in stored form by `normalized`), the page it answers
(NotificationPage) and the opaque cursor to the next one (Cursor), with their limits."""

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from logs.models import Notification
from logs.phone import phone_normalize
from logs.vocabulary import Channel, EventKind, EventSubKind, NotificationStatus

PAGE_SIZE_MAX = 1000
# Every column of a notification: what a page reads unless its caller names fewer.
NOTIFICATION_FIELDS = tuple(field.attname for field in Notification._meta.concrete_fields)
EMAIL_PREFIX_MIN = 3


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
