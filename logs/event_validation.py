"""The check of an event to record (logs.recording.EventSpec) against the vocabulary
(logs/vocabulary.py), before anything of it is written: its kind and sub-kind, its channel
or none (an outcome of the whole request), the delivery columns it may set, its times and
dedupe key. A ValueError says what to pass instead."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from logs.dedupe_keys import DEDUPE_KEY_MAX
from logs.status import EventFact
from logs.vocabulary import (
    REQUEST_LEVEL_SUB_KINDS_BY_KIND,
    SUB_KINDS_BY_CHANNEL,
    SUB_KINDS_BY_KIND,
    Channel,
)

# Delivery columns an event may set along the way (the provider's id on Sent, the error on
# Failed, the rendered content on Sending). Anything else is refused.
DELIVERY_FIELDS = frozenset(
    {
        "provider",
        "provider_message_id",
        "reports_delivery",
        "destination",
        "subject",
        "html",
        "text",
        "content_packed",
        "content_dictionary_id",
        "error_code",
        "error_message",
    }
)


def event_validate(
    *,
    kind: str,
    sub_kind: str,
    channel: str,
    occurred_at: datetime,
    notification_created_at: datetime | None,
    dedupe_key: str,
    delivery_fields: Mapping[str, Any],
) -> None:
    """Refuse, before anything is written, what the log cannot hold, saying what to pass."""
    _delivery_fields_validate(delivery_fields, channel)
    # The kind, the sub-kind's kind and the time zone, as the status rules will need them.
    EventFact(kind=kind, sub_kind=sub_kind, occurred_at=occurred_at)
    if channel:
        _channel_fit_validate(kind, sub_kind, channel)
    else:
        _request_level_validate(kind, sub_kind)
    if notification_created_at is not None and notification_created_at.utcoffset() is None:
        raise ValueError(
            f"notification_created_at {notification_created_at!r} is naive: pass an aware "
            "datetime (e.g. datetime.fromtimestamp(epoch_ms / 1000, UTC))."
        )
    if len(dedupe_key) > DEDUPE_KEY_MAX:
        raise ValueError(f"dedupe_key is longer than {DEDUPE_KEY_MAX} characters.")


def _delivery_fields_validate(delivery_fields: Mapping[str, Any], channel: str) -> None:
    if unknown := set(delivery_fields) - DELIVERY_FIELDS:
        raise ValueError(
            f"event_record cannot set {', '.join(sorted(unknown))} on a delivery; allowed: "
            f"{', '.join(sorted(DELIVERY_FIELDS))}."
        )
    if delivery_fields and not channel:
        raise ValueError(
            "delivery_fields describe one channel's delivery and an event without a channel "
            "has none: pass channel=, or put the reason in detail=."
        )


def _channel_fit_validate(kind: str, sub_kind: str, channel: str) -> None:
    kind, sub_kind, channel = str(kind), str(sub_kind), str(channel)  # enum members print oddly
    if channel not in SUB_KINDS_BY_CHANNEL:
        raise ValueError(
            f"Unknown channel {channel!r}: use one of {_quoted(Channel.values)} "
            "(logs.vocabulary.Channel), or no channel for an outcome of the whole request."
        )
    if sub_kind and sub_kind not in SUB_KINDS_BY_CHANNEL[channel]:
        owners = [name for name, allowed in SUB_KINDS_BY_CHANNEL.items() if sub_kind in allowed]
        fitting = SUB_KINDS_BY_KIND.get(kind, frozenset()) & SUB_KINDS_BY_CHANNEL[channel]
        raise ValueError(
            f"Sub-kind {sub_kind!r} does not fit channel {channel!r}: it belongs to "
            f"{_quoted(owners)}. A {kind!r} event on {channel!r} takes "
            f"{_sub_kind_choices(fitting)} (logs.vocabulary.SUB_KINDS_BY_CHANNEL)."
        )


def _request_level_validate(kind: str, sub_kind: str) -> None:
    kind, sub_kind = str(kind), str(sub_kind)  # enum members print oddly
    if kind not in REQUEST_LEVEL_SUB_KINDS_BY_KIND:
        raise ValueError(
            f"A {kind!r} event belongs to a channel: pass channel= (one of "
            f"{_quoted(Channel.values)}). Only {_quoted(REQUEST_LEVEL_SUB_KINDS_BY_KIND)} may "
            "be recorded without one: they belong to the whole request."
        )
    allowed = REQUEST_LEVEL_SUB_KINDS_BY_KIND[kind]
    if sub_kind and sub_kind not in allowed:
        owners = [name for name, subs in SUB_KINDS_BY_CHANNEL.items() if sub_kind in subs]
        raise ValueError(
            f"Sub-kind {sub_kind!r} names what a channel's provider reported, so it needs "
            f"channel= ({_quoted(owners)}); a request-level {kind!r} event takes "
            f"{_sub_kind_choices(allowed)}."
        )


def _quoted(values: Any) -> str:
    return ", ".join(repr(str(value)) for value in values)


def _sub_kind_choices(sub_kinds: frozenset[str]) -> str:
    if not sub_kinds:
        return "no sub-kind (sub_kind='')"
    return f"no sub-kind or one of {_quoted(sorted(sub_kinds))}"
