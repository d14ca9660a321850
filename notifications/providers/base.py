"""The one small interface every channel provider implements.

A provider gets an `OutgoingMessage` (rendered content and the address) and either returns
`Accepted` with its message id, or raises `ProviderError` saying whether trying again may help.
Dispatch (notifications/sending.py) owns attempts, backoff and the timeline; a provider only
talks to its service.
"""

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from notifications.rendering import Content


@dataclass(frozen=True)
class OutgoingMessage:
    environment_id: int
    notification_id: uuid.UUID
    notification_created_at: object  # datetime; the partition key of the log rows
    notification_type: str
    channel: str
    user_id: str
    sub_notification_id: str
    destination: str  # email address, E.164 number, or the user id for in-app
    content: Content
    # Email only: "Name <address>" or an address; empty means DEFAULT_FROM_EMAIL.
    from_email: str = ""
    reply_to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Accepted:
    provider_message_id: str
    # False for a provider that never reports delivery (plain SMTP): Sent is then final.
    reports_delivery: bool = True


class ProviderError(Exception):
    """The provider refused or could not be reached. `transient`: a later attempt may work
    (timeouts, 5xx, 429); otherwise the failure is final."""

    def __init__(self, message: str, *, code: str = "", transient: bool = False):
        super().__init__(message)
        self.message = message
        self.code = str(code or "")
        self.transient = transient


def answer_of(call: Callable[..., Accepted], argument: object) -> Accepted | Exception:
    """A provider call's answer for send_many: its Accepted, or the exception it raised,
    returned rather than raised (the caller records the provider's refusals and raises the
    rest: unexpected)."""
    try:
        return call(argument)
    except Exception as exc:
        return exc


def unexpected(answer: object) -> bool:
    """An answer that is not the provider's (a bug or an outage of ours): the calls after it
    are not made, and the dispatch raises it once the answers before it are recorded."""
    return isinstance(answer, Exception) and not isinstance(answer, ProviderError)


class Provider:
    name: str = ""

    def send(self, message: OutgoingMessage) -> Accepted:
        raise NotImplementedError

    def send_many(
        self, messages: Sequence[OutgoingMessage], *, start_by: float
    ) -> list[Accepted | Exception | None]:
        """The calls of one dispatch transaction (notifications/sending.py), in order: each
        message's Accepted, or the exception its send raised, or None for one not started
        because `time.monotonic()` passed `start_by` first (the claims' renewal covers calls
        started by then) or an unexpected error stopped the calls. The first is always
        started. This default sends one after another; a provider that can hand several
        over at once (the sandbox: one INSERT) does so."""
        results: list[Accepted | Exception | None] = [None] * len(messages)
        for index, message in enumerate(messages):
            if index and time.monotonic() > start_by:
                break
            results[index] = answer_of(self.send, message)
            if unexpected(results[index]):
                break
        return results

    def after_sent(self, message: OutgoingMessage, accepted: Accepted) -> None:
        """Called once Sent is committed (the sandbox schedules its callbacks here)."""


class NoProvider(Provider):
    """Push and web push until a provider for them exists: a clear, final failure."""

    name = "none"

    def send(self, message: OutgoingMessage) -> Accepted:
        raise ProviderError("no provider configured for this channel", code="no_provider")
