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


def provider_words(*parts: object, already_said: tuple[str, ...] = ()) -> str:
    """A provider's words about one event (a reason, a description, the MTA's answer), each
    said once: empty parts, a part another one already contains (Postmark's Description is
    often the start of its Details), and a part `already_said` names (anymail's reject
    reason "bounced" on a "bounced" event) are left out. Joined with "; "."""
    texts = [str(part).strip() for part in parts if part is not None and str(part).strip()]
    said = [text.casefold() for text in already_said]
    kept: list[str] = []
    for index, text in enumerate(texts):
        folded = text.casefold()
        others = [other.casefold() for n, other in enumerate(texts) if n != index]
        repeated = (
            folded in said
            or any(folded == other.casefold() for other in kept)
            or any(folded in other and folded != other for other in others)
        )
        if not repeated:
            kept.append(text)
    return "; ".join(text.rstrip(" .;") if n < len(kept) - 1 else text
                     for n, text in enumerate(kept))  # fmt: skip
