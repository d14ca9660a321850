"""A channel's sending, for a batch's notifications: the provider calls, their retries with
exponential backoff, and the events recording each attempt and its outcome.

Each attempt is a Sending event (after the first, its detail says why the previous one
failed); the provider is called outside any transaction; then Sent with the provider's
message id or, for the last attempt only, Failed with its error (a Failed without sub-kind
is final for the status rules). Up to DISPATCH_CALLS_PER_TRANSACTION calls share one
transaction recording their Sendings and one their outcomes: the at-least-once window
(notifications/dispatch.py).
"""

import time
from dataclasses import dataclass

from django.conf import settings

from logs.content import content_fields, dictionaries_ids
from logs.models import channel_address
from logs.recording import EventSpec
from logs.services import events_record
from logs.vocabulary import Channel, EventKind
from notifications.channel_rules import ignored_reason
from notifications.dispatch_load import Dispatch
from notifications.messages import CannotSend, content_dictionary, message_build
from notifications.outbox import RENEWED_RECENTLY_SECONDS, Leases
from notifications.providers import (
    Accepted,
    OutgoingMessage,
    Provider,
    ProviderError,
    provider_for_channel,
    unexpected,
)

SOURCE = "pipeline"


def _spec(
    dispatch: Dispatch,
    channel: str,
    kind: str,
    *,
    dedupe_key: str,
    detail: str,
    sub_kind: str = "",
    delivery_fields: dict | None = None,
    payload: dict | None = None,
) -> EventSpec:
    notification = dispatch.notification
    return EventSpec(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        environment_id=notification.environment_id,  # on Citus: its lock goes to one shard
        kind=kind,
        sub_kind=sub_kind,
        channel=channel,
        source=SOURCE,
        dedupe_key=dedupe_key,
        detail=detail,
        delivery_fields=delivery_fields,
        payload=payload,
    )


def _record(specs: list[EventSpec]) -> None:
    """Record a batch's events in one transaction (logs.services.events_record). An event
    that cannot be recorded (its notification purged meanwhile) fails the task, as it
    would alone: the claims are released and the sweeper hands the batch on."""
    for outcome in events_record(specs) if specs else ():
        if isinstance(outcome, Exception):
            raise outcome


class ProviderChoice:
    """Each environment's provider per channel, looked up once per batch."""

    def __init__(self):
        self._chosen: dict[tuple[int, str], Provider] = {}

    def __call__(self, environment_id: int, channel: str) -> Provider:
        key = (environment_id, channel)
        if key not in self._chosen:
            self._chosen[key] = provider_for_channel(environment_id=environment_id, channel=channel)
        return self._chosen[key]


@dataclass
class _Attempt:
    dispatch: Dispatch
    provider: Provider
    message: OutgoingMessage
    number: int  # this attempt's number (earlier runs' attempts counted)
    why: str  # why it is not the first: said on its Sending line
    error: ProviderError | None = None


def channel_dispatch(
    group: list[Dispatch], channel: str, providers: ProviderChoice, leases: Leases
) -> None:
    """One channel of a batch's notifications: the ones ignored or that cannot be sent get
    their outcome, the others are sent (with retries), each as a dispatch alone would."""
    outcomes: list[EventSpec] = []
    attempts: list[_Attempt] = []
    maximum = settings.SEND_MAX_ATTEMPTS
    for dispatch in group:
        ignored = ignored_reason(dispatch, channel)
        if ignored is not None:
            sub_kind, detail = ignored
            outcomes.append(
                _spec(
                    dispatch,
                    channel,
                    EventKind.IGNORED,
                    sub_kind=sub_kind,
                    detail=detail,
                    dedupe_key=f"ignored:{channel}",
                )
            )
            continue
        provider = providers(dispatch.notification.environment_id, channel)
        try:
            if provider.name == "none":
                raise CannotSend("no provider configured for this channel")
            message = message_build(dispatch, channel)
        except CannotSend as exc:
            outcomes.append(
                _spec(
                    dispatch,
                    channel,
                    EventKind.FAILED,
                    detail=str(exc),
                    dedupe_key=f"failed:{channel}",
                    delivery_fields={"error_code": "bad_parameters", "error_message": str(exc)},
                )
            )
            continue
        first = dispatch.attempts.get(channel, 0) + 1
        attempt = _Attempt(
            dispatch, provider, message, first,
            "" if first == 1 else "; the previous attempt was interrupted",
        )  # fmt: skip
        if first > maximum:
            # Every attempt was used by runs that died mid-call (worker killed): stop here
            # rather than loop; the provider may or may not have the message.
            outcomes.append(_failed_spec(attempt, channel, maximum))
        else:
            attempts.append(attempt)
    retries = 0
    while attempts:
        again = _attempts_make(attempts, channel, leases, outcomes)
        outcomes = []
        if again:
            time.sleep(settings.SEND_RETRY_BACKOFF_SECONDS * 2**retries)
            retries += 1
        attempts = again
    _record(outcomes)


def _attempts_make(
    attempts: list[_Attempt], channel: str, leases: Leases, outcomes: list[EventSpec]
) -> list[_Attempt]:
    """Make one round of a channel's attempts, up to DISPATCH_CALLS_PER_TRANSACTION calls
    at a time: one transaction records the previous calls' outcomes (first, `outcomes`) and
    these calls' Sendings, then the calls are made (at once where the provider can). The
    outcomes of the last calls are recorded before returning; returns the attempts to make
    again (a transient error, attempts left)."""
    per_transaction = settings.DISPATCH_CALLS_PER_TRANSACTION
    maximum = settings.SEND_MAX_ATTEMPTS
    again: list[_Attempt] = []
    after_sent: list[tuple[_Attempt, Accepted]] = []
    waiting = list(attempts)  # their Sending not recorded yet
    not_started: list[_Attempt] = []  # Sending recorded; the call not started in time
    first = True
    while waiting or not_started:
        # Before the calls, the claims are ours: renewed once a round, then again when the
        # last renewal is over a second old (a slow provider's calls).
        leases.renew([a.dispatch for a in (*not_started, *waiting)], unless_recent=not first)
        first = False
        not_started = [a for a in not_started if not a.dispatch.lost]
        new: list[_Attempt] = []
        while waiting and len(not_started) + len(new) < per_transaction:
            attempt = waiting.pop(0)
            if not attempt.dispatch.lost:
                new.append(attempt)
        # One transaction: the previous calls' outcomes and these calls' Sendings. Never
        # more than DISPATCH_CALLS_PER_TRANSACTION channels are between their Sending and
        # their outcome (one, with the setting at 1: as a dispatch alone).
        # The templates' content dictionaries (logs/content.py) of these calls, at once.
        dictionaries = [content_dictionary(a.dispatch, channel) for a in new]
        known = dictionaries_ids(
            {(a.message.environment_id, d) for a, d in zip(new, dictionaries, strict=True) if d}
        )
        _record(
            [
                *outcomes,
                *(
                    _sending_spec(a, channel, dictionary=d, dictionary_ids=known)
                    for a, d in zip(new, dictionaries, strict=True)
                ),
            ]
        )
        outcomes = []
        _after_sent(after_sent)
        calls = [*not_started, *new]
        # The at-least-once window: killed between here and the outcomes' record, these
        # channels are sent again by the next worker. Email repeats its Message-ID
        # (receivers dedupe); Twilio's Messages and Calls APIs take no idempotency key, so
        # an SMS or a call may then reach the user twice.
        results = _calls(calls, start_by=leases.renewed_at + RENEWED_RECENTLY_SECONDS)
        not_started = []
        unexpected: BaseException | None = None
        for attempt, result in zip(calls, results, strict=True):
            if result is None:
                not_started.append(attempt)  # past its renewal's second: after the next
            elif isinstance(result, Accepted):
                outcomes.append(_sent_spec(attempt, channel, result))
                after_sent.append((attempt, result))
            elif isinstance(result, ProviderError):
                attempt.error = result
                if result.transient and attempt.number < maximum:
                    attempt.why = f"; attempt {attempt.number} failed: {_error_text(result)}"
                    attempt.number += 1
                    again.append(attempt)
                else:
                    outcomes.append(_failed_spec(attempt, channel, maximum))
            else:
                unexpected = unexpected or result
        if unexpected is not None:
            # A bug or an outage of ours, not the provider's answer: what was answered is
            # recorded, then the task fails (the claims are released, the sweeper hands the
            # batch on and the channels not answered are sent again).
            _record(outcomes)
            _after_sent(after_sent)
            raise unexpected
    # The outcomes so far are recorded before the wait for the retries.
    _record(outcomes)
    _after_sent(after_sent)
    return again


def _calls(calls: list[_Attempt], *, start_by: float) -> list[Accepted | Exception | None]:
    """Each attempt's provider call, grouped by provider (Provider.send_many), in order:
    its Accepted, the exception it raised, or None when it was not started (past
    `start_by`, or after an unexpected error). The first call is always started."""
    results: list[Accepted | Exception | None] = [None] * len(calls)
    by_provider: dict[int, tuple[Provider, list[int]]] = {}
    for index, attempt in enumerate(calls):
        by_provider.setdefault(id(attempt.provider), (attempt.provider, []))[1].append(index)
    for group, (provider, indexes) in enumerate(by_provider.values()):
        if group and time.monotonic() > start_by:
            break
        answers = provider.send_many([calls[i].message for i in indexes], start_by=start_by)
        for index, answer in zip(indexes, answers, strict=True):
            results[index] = answer
        if any(unexpected(answer) for answer in answers):
            break
    return results


def _after_sent(sent: list[tuple[_Attempt, Accepted]]) -> None:
    """The providers' follow-ups of messages whose Sent is recorded (and committed)."""
    for attempt, accepted in sent:
        attempt.provider.after_sent(attempt.message, accepted)
    sent.clear()


# Attempts: what each records.


def _error_text(error: ProviderError) -> str:
    return f"{error.message} (code {error.code})" if error.code else error.message


def _sending_spec(
    attempt: _Attempt,
    channel: str,
    *,
    dictionary: bytes,
    dictionary_ids: dict[tuple[int, bytes], int],
) -> EventSpec:
    message, number = attempt.message, attempt.number
    content = message.content
    return _spec(
        attempt.dispatch,
        channel,
        EventKind.SENDING,
        dedupe_key=f"sending:{channel}:{number}",
        detail=f"Attempt {number} of {settings.SEND_MAX_ATTEMPTS} via {attempt.provider.name}"
        f"{attempt.why}.",
        delivery_fields={
            "provider": attempt.provider.name,
            # Blank when it is the notification's own address (always, as messages._destination
            # picks it): not stored twice (Delivery.destination_of).
            "destination": (
                ""
                if message.destination == channel_address(attempt.dispatch.notification, channel)
                else message.destination
            ),
            **content_fields(
                environment_id=message.environment_id,
                subject=content.subject,
                html=content.html,
                text=content.text,
                dictionary=dictionary,
                dictionary_ids=dictionary_ids,
            ),
        },
        payload=_envelope(message),
    )


def _envelope(message: OutgoingMessage) -> dict | None:
    """What the delivery's columns do not hold of what was handed over: an email's sender
    and other recipients (the console shows the sender on the Sending line). The recipient is
    the delivery's destination and is not said again; empty lists are left out."""
    if message.channel != Channel.EMAIL:
        return None
    others = {"cc": message.cc, "bcc": message.bcc, "reply_to": message.reply_to}
    return {
        "from": message.from_email or settings.DEFAULT_FROM_EMAIL,
        **{name: addresses for name, addresses in others.items() if addresses},
    }


def _sent_spec(attempt: _Attempt, channel: str, accepted: Accepted) -> EventSpec:
    return _spec(
        attempt.dispatch,
        channel,
        EventKind.SENT,
        dedupe_key=f"sent:{channel}",
        # The provider's message id is the delivery's (delivery_fields below; the console
        # shows it on the delivery's card): the event does not say it again.
        detail=f"Accepted by {attempt.provider.name}.",
        delivery_fields={
            "provider_message_id": accepted.provider_message_id,
            "reports_delivery": accepted.reports_delivery,
            "error_code": "",
            "error_message": "",
        },
    )


def _failed_spec(attempt: _Attempt, channel: str, maximum: int) -> EventSpec:
    error, provider = attempt.error, attempt.provider
    if error is None:
        # Every attempt was used by runs that died mid-call (worker killed).
        error = ProviderError(
            f"Gave up after {maximum} attempts; the last was interrupted before {provider.name} "
            "answered.",
            code="interrupted",
        )
    retried = " after retries" if error.transient else ""
    return _spec(
        attempt.dispatch,
        channel,
        EventKind.FAILED,
        dedupe_key=f"failed:{channel}",
        detail=f"{provider.name} refused{retried}: {_error_text(error)}",
        delivery_fields={"error_code": error.code, "error_message": error.message},
    )
