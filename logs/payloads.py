"""An event's payload (a provider's callback as it was received), stored compressed with a
preset dictionary of its provider's format.

A callback is a few hundred bytes, under the size at which PostgreSQL compresses a row (about
2 KB), and most of it is its provider's field names and fixed values ("ApiVersion":
"2010-04-01", "MessageStatus": "delivered", an SES event's "mail" skeleton); some values are
said twice (Twilio's SmsSid is its MessageSid). Deflate (zlib) with a preset dictionary holding
those names and values (logs/payload_dictionaries.py) keeps what is particular to the
callback: its ids, addresses and times, and a value repeated in it once.

- The stored value (`Event.payload_packed`, bytea): one byte naming the dictionary, then the
  raw deflate of the payload as compact JSON (sorted keys, no spaces). The dictionaries are
  in code, by id, and never change (a better one is a new id; an old id stays decodable), so
  nothing is looked up in the database and nothing has to be kept with an environment.
- `payload` (jsonb) holds it instead when its source has no dictionary (an ESP added later,
  the pipeline's own envelope), when it does not get smaller, and in every row written before
  this: both columns are read, the packed one first.
- Shown as the same JSON value that was received. Its key order is not kept, as jsonb never
  kept it (the console shows keys sorted).

Every reader of an event's payload goes through `event_payload`.
"""

import json
from typing import Any

from logs.content import deflate_raw, inflate_raw
from logs.payload_dictionaries import PAYLOAD_DICTIONARIES

# The source an event is recorded with (logs.models.Event.source) -> the dictionary its
# payloads are packed with from now on. Email callbacks are recorded under the ESP's name up
# to its first "_" (webhooks.services: "amazon_ses" -> "amazon"); the seed writes the full one.
SOURCE_DICTIONARIES: dict[str, int] = {
    "twilio": 1,
    "amazon": 2,
    "amazon_ses": 2,
    "sendgrid": 3,
    "mailgun": 4,
    "postmark": 5,
    "sandbox": 6,
}
# A callback and its dictionary fit in a 4 KB window: its compressor then allocates about
# 18 KB instead of 260 KB for every value (measured 8 to 10 us instead of 10 to 60, the
# allocator's mood deciding), for the same bytes out. Longer values get the whole 32 KB.
_SMALL = 2048
_SMALL_WINDOW_BITS = -12
_SMALL_MEM_LEVEL = 2


def payload_fields(*, source: str, payload: Any) -> dict[str, Any]:
    """The event's payload columns (`payload`, `payload_packed`) for `payload`, a JSON value
    (datetimes already written as text): packed when its source has a dictionary and that
    makes it smaller, else in `payload` as it always was."""
    packed = payload_packed(source=source, payload=payload)
    if packed is None:
        return {"payload": payload, "payload_packed": None}
    return {"payload": None, "payload_packed": packed}


def payload_packed(*, source: str, payload: Any) -> bytes | None:
    """`payload` packed with its source's dictionary, or None: no payload, a source without
    a dictionary, a value that is not JSON as it stands (left for jsonb to take or refuse, as
    it always did), or one that does not get smaller. No database: the seed packs with it."""
    dictionary_id = SOURCE_DICTIONARIES.get(source)
    if payload is None or dictionary_id is None:
        return None
    try:
        value = json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        ).encode()
    except (TypeError, ValueError):  # not JSON: keys of mixed types, NaN, a lone surrogate
        return None
    dictionary = PAYLOAD_DICTIONARIES[dictionary_id]
    if len(value) <= _SMALL:
        packed = deflate_raw(
            value, dictionary, window_bits=_SMALL_WINDOW_BITS, mem_level=_SMALL_MEM_LEVEL
        )
    else:
        packed = deflate_raw(value, dictionary)
    if 1 + len(packed) >= len(value):
        return None
    return bytes((dictionary_id,)) + packed


def event_payload(event) -> Any:
    """The event's payload as it was received (None when it had none, or it was cleared),
    whichever way it is stored."""
    packed = event.payload_packed
    if packed is None:
        return event.payload
    return payload_unpacked(bytes(packed))


def payload_unpacked(packed: bytes) -> Any:
    """The JSON value payload_packed packed."""
    dictionary = PAYLOAD_DICTIONARIES.get(packed[0])
    if dictionary is None:
        raise LookupError(
            f"Payload dictionary {packed[0]} is not in logs.payload_dictionaries: a "
            "dictionary was removed, or the row was written by a newer release."
        )
    return json.loads(inflate_raw(packed[1:], dictionary))
