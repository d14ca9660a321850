"""An event's dedupe key (Event.dedupe_key), which makes recording it twice record it once:
the caller's key, else the provider's event id, else a hash of what the event says
(event_dedupe_key), fitted to the column (dedupe_key_choose). Every time in the hash is in
UTC; the same walk of a payload's times stores a datetime given in one as ISO 8601
(payload_storable)."""

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from logs.models import Event

DEDUPE_KEY_MAX = Event._meta.get_field("dedupe_key").max_length


# Times providers write in their payloads as text: ISO 8601 with an offset ("…T12:00:00Z",
# "…T13:00:00+01:00") and RFC 2822 (Twilio's `Timestamp`: "Fri, 20 Nov 2026 12:00:00 +0000").
# A time without an offset names no instant and is left as written.
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)")
_RFC_2822_TIME = re.compile(
    r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"
)


def event_dedupe_key(
    *,
    kind: str,
    sub_kind: str,
    channel: str,
    occurred_at: datetime | None,
    source: str,
    payload: Any,
) -> str:
    """A stable key for an event the provider gave no id for: a hash of what it says.

    Every time in it is hashed in UTC, the payload's included (datetime objects and time
    strings with an offset, at any depth): the same instant written in two zones is the same
    event. An occurred_at in UTC and a payload without times hash as they always did."""
    canonical = json.dumps(
        [
            kind,
            sub_kind,
            channel,
            _utc_text(occurred_at) if occurred_at else None,
            source,
            _times_mapped(payload, _utc_text, in_text=True),
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _times_mapped(value: Any, convert: Callable[[datetime], str], *, in_text: bool) -> Any:
    """`value` with every datetime in it (at any depth) replaced by `convert(datetime)`, and
    with `in_text` every string that writes an instant too."""
    if isinstance(value, Mapping):
        return {key: _times_mapped(item, convert, in_text=in_text) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_times_mapped(item, convert, in_text=in_text) for item in value]
    if isinstance(value, datetime):
        return convert(value)
    if in_text and isinstance(value, str) and (moment := _time_in_text(value)) is not None:
        return convert(moment)
    return value


def _time_in_text(text: str) -> datetime | None:
    try:
        if _ISO_TIME.fullmatch(text):
            return datetime.fromisoformat(text)
        if _RFC_2822_TIME.fullmatch(text):
            return parsedate_to_datetime(text)
    except ValueError:  # shaped like a time but not one (a 61st minute): plain text
        pass
    return None


def _utc_text(moment: datetime) -> str:
    if moment.utcoffset() is None:
        return moment.isoformat()  # naive: names no instant, so nothing to normalise
    return moment.astimezone(UTC).isoformat()


def payload_storable(payload: Any) -> Any:
    # JSON has no datetime: one given inside a payload is stored as ISO 8601, in its own
    # zone. Strings are kept exactly as the provider wrote them.
    return _times_mapped(payload, datetime.isoformat, in_text=False)


def _dedupe_key_fitted(key: str) -> str:
    if len(key) > DEDUPE_KEY_MAX:
        # A long provider event id: its digest is just as unique and fits the column.
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def dedupe_key_choose(key: str, provider_event_id: str, *, source: str, **said: Any) -> str:
    """The caller's key, else the provider's event id, else a hash of what the event says."""
    # WORKAROUND: providers retry a callback with no event id and often no time of their own
    # (Twilio's SMS status callbacks): the hash covers the time only when the caller knows
    # it, so a retry recorded later hashes the same.
    return _dedupe_key_fitted(
        key
        or (f"{source}:{provider_event_id}" if provider_event_id else "")
        or event_dedupe_key(source=source, **said)
    )
