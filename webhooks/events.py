"""What a parsed callback says, in the log's words: the shape every provider module returns."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CallbackEvent:
    """One event a callback reports, in the log's words (provider modules build these)."""

    channel: str
    provider_message_id: str
    # None: the callback reports a status that is not a timeline event (queued, ...).
    kind: str | None
    sub_kind: str = ""
    occurred_at: datetime | None = None
    provider_event_id: str = ""
    detail: str = ""
    payload: object = None
    error_code: str = ""
    error_message: str = ""


class UnparseableCallback(ValueError):
    """An authentic callback that is not a payload we can read; the message says what is
    missing or wrong (never quotes the body)."""
