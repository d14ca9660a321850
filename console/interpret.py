"""What a pasted value is. Support staff paste whatever the ticket holds into one box; this
module says which keys to try, in order, so the console can answer with the first key that
finds something and say which one it was ("searched as user id").

Pure functions, no database: the view runs the searches.
"""

import re
import uuid
from dataclasses import dataclass

from logs.phone import phone_normalize
from logs.search_filters import EMAIL_PREFIX_MIN


@dataclass(frozen=True)
class SearchKey:
    name: str  # also the value of the form's "search as" field
    label: str  # what the page says it searched as
    filters: dict  # NotificationFilters keyword arguments


KEY_LABELS = {
    "tracking_id": "tracking id",
    "user_id": "user id",
    "email": "email",
    "email_prefix": "email prefix",
    "number": "phone number",
    "provider_message_id": "provider message id",
}

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[\d\s().\-/]+")
_PHONE_DIGITS_MIN = 7
_EMAIL_PREFIX_CHARS = re.compile(r"[\w.+\-@]+")


def search_key(name: str, text: str) -> SearchKey:
    """`text` searched as the key `name`; ValueError says why it cannot be."""
    text = text.strip()
    if name == "tracking_id":
        try:
            return SearchKey(name, KEY_LABELS[name], {"tracking_ids": [uuid.UUID(text)]})
        except ValueError:
            raise ValueError(f"{text!r} is not a tracking id (a UUID).") from None
    if name == "user_id":
        return SearchKey(name, KEY_LABELS[name], {"user_ids": [text]})
    if name == "email":
        return SearchKey(name, KEY_LABELS[name], {"email": text})
    if name == "email_prefix":
        if len(text) < EMAIL_PREFIX_MIN:
            raise ValueError(
                f"An email prefix needs at least {EMAIL_PREFIX_MIN} characters; type more."
            )
        return SearchKey(name, KEY_LABELS[name], {"email_prefix": text})
    if name == "number":
        return SearchKey(name, KEY_LABELS[name], {"number": phone_normalize(text)})
    if name == "provider_message_id":
        return SearchKey(name, KEY_LABELS[name], {"provider_message_id": text})
    raise ValueError(f"Unknown search key {name!r}: use one of {', '.join(KEY_LABELS)}.")


def search_keys_guess(text: str) -> list[SearchKey]:
    """The keys `text` could be, most likely first. Every guess is an index lookup, so
    trying three costs little more than one."""
    text = text.strip()
    if not text:
        return []
    names = _guess_names(text)
    keys = []
    for name in names:
        try:
            keys.append(search_key(name, text))
        except ValueError:
            continue  # not this key after all (e.g. too few digits for a phone number)
    return keys


def _guess_names(text: str) -> list[str]:
    try:
        uuid.UUID(text)
    except ValueError:
        pass
    else:
        # Integrators often use UUIDs as user ids and some providers as message ids.
        return ["tracking_id", "user_id", "provider_message_id"]
    if _EMAIL.fullmatch(text):
        return ["email", "user_id"]
    if "@" in text:
        return ["email_prefix", "user_id"]
    if _PHONE.fullmatch(text) and sum(c.isdigit() for c in text) >= _PHONE_DIGITS_MIN:
        return ["number", "user_id", "provider_message_id"]
    names = ["user_id", "provider_message_id"]
    if len(text) >= EMAIL_PREFIX_MIN and _EMAIL_PREFIX_CHARS.fullmatch(text):
        names.append("email_prefix")
    return names
