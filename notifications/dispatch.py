"""Dispatch: from an accepted notification to a provider call per channel, and the sweeper
that makes the hand-off durable.

Per channel, in this order: the dashboard flag (ChannelTemplate.enabled) → the user's
preference → the plan's monthly limit, each an Ignored event with its sub-kind; then the
content is rendered (python-liquid) and the address checked, a failure of either a Failed
event naming the tag or field; then Sending, the provider call outside any transaction, and
Sent with the provider's message id or Failed with its error.

Running it twice records nothing twice: one worker at a time holds a notification (a claim
on its outbox row with an expiry, renewed before each provider call; a dead worker's claim
runs out and the sweeper hands the notification on), a channel that already has an outcome
is skipped, and the outbox row is deleted only when every channel is done. The claim is a
row, not a session advisory lock: behind a pooler in transaction mode the connection between
two transactions is not this worker's, and a session lock would stay on it for another
client.

Sending is at least once, not exactly once. A worker killed after the provider accepted a
message and before Sent was recorded leaves the channel at Sending; the sweeper hands the
notification to another worker, which calls the provider again (attempt 2). Where the
provider honours an id of ours the repeat carries the same one, so the receiving side can
drop it: an email's Message-ID is derived from the tracking id and the channel
(providers/email.py), the same on every attempt. Twilio has no idempotency key, so an SMS or
call interrupted that way may reach the user twice. The window is the provider calls of one
recording: up to DISPATCH_CALLS_PER_TRANSACTION calls of a batch's channel share it (one
transaction records their Sendings, one their outcomes), so one kill can leave that many
channels at Sending.

Transient provider errors are retried in the task with exponential backoff; each attempt is a
Sending event whose detail says why the previous one failed, and only the last failure is a
Failed event (a Failed without sub-kind is final for the status rules).
"""

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formataddr
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.html import strip_tags

from config import afterwards
from logs.citus import environment_groups
from logs.content import content_fields, dictionaries_ids, template_dictionary
from logs.models import Delivery, Event, Notification, channel_address
from logs.recording import EventSpec
from logs.services import event_record, events_record
from logs.vocabulary import Channel, DeliveryState, EventKind, EventSubKind
from notifications import selectors
from notifications.models import ChannelTemplate, Outbox, PlanUsage, UserPreference
from notifications.providers import (
    Accepted,
    OutgoingMessage,
    Provider,
    ProviderError,
    provider_for_channel,
    unexpected,
)
from notifications.rendering import Content, RenderError, content_parts, content_render
from notifications.services import dispatch_enqueue, sender_refusal
from notifications.wire import CHANNEL_TO_WIRE, RequestInvalid, SendRequest, send_request_parse

logger = logging.getLogger(__name__)

SOURCE = "pipeline"
# A channel in one of these states has its outcome: a re-run leaves it alone.
_DONE = frozenset(
    {DeliveryState.IGNORED, DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.FAILED}
)
_MAX_SWEEP_DOUBLINGS = 6  # re-enqueues of a waiting row back off up to 64 times the grace period


class _CannotSend(Exception):
    """The channel cannot be sent (no template, render error, no address): Failed."""


@dataclass
class _Dispatch:
    notification: Notification
    outbox: Outbox
    send_request: SendRequest
    templates: dict[str, ChannelTemplate]
    preferences: list[UserPreference]
    states: dict[str, str]
    # Sending events already recorded per channel (by runs before this one).
    attempts: dict[str, int] = field(default_factory=dict)
    plan_allowed: bool | None = None
    claim: uuid.UUID | None = None
    # Set when its claim was found taken by another worker: nothing more is sent for it.
    lost: bool = False
    channel_label: dict[str, str] = field(default_factory=lambda: dict(Channel.choices))


class _ClaimLost(Exception):
    """The claim ran out and another worker took the notification: stop before sending."""


_CLAIM_LOST = "claim lost: its lease ran out and another worker took it"
_OUTBOX = Outbox._meta.db_table
# Rows are locked in id order (two batches that share rows never deadlock), and the claim's
# conditions are checked again once a row's lock is had: of two workers racing, the second
# waits on the row and then finds the claim taken.
_CLAIM = f"""
UPDATE {_OUTBOX} SET claimed_by = %s, claimed_until = %s, next_sweep_at = %s
WHERE id IN (
    SELECT id FROM {_OUTBOX}
    WHERE notification_id = ANY(%s::uuid[]) AND due_at <= %s
        AND (claimed_until IS NULL OR claimed_until <= %s)
    ORDER BY id FOR UPDATE
)
RETURNING *
"""  # noqa: S608 (the model's table)
_RENEW = f"""
UPDATE {_OUTBOX} SET claimed_until = %s, next_sweep_at = %s
WHERE id IN (
    SELECT id FROM {_OUTBOX} WHERE notification_id = ANY(%s::uuid[]) AND claimed_by = %s
    ORDER BY id FOR UPDATE
)
RETURNING notification_id
"""  # noqa: S608


def _outbox_claim(
    notification_ids: list[uuid.UUID], token: uuid.UUID
) -> tuple[dict[uuid.UUID, Outbox], dict[uuid.UUID, str]]:
    """Claim the batch's outbox rows for this run: one UPDATE for all of them. Returns the
    rows claimed, by notification id, and why each of the others was not."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    # While a worker holds it, the sweeper leaves the row alone (next_sweep_at); when the
    # claim runs out, the sweeper hands the notification to another worker.
    claimed = {
        row.notification_id: row
        for row in Outbox.objects.raw(_CLAIM, [token, until, until, notification_ids, now, now])
    }
    unclaimed = [i for i in notification_ids if i not in claimed]
    not_claimed = dict.fromkeys(
        unclaimed, "nothing to do: dispatched already, or not due"
    )  # already dispatched (row gone) or not due yet (the schedule moved)
    if unclaimed:
        for notification_id, due_at in Outbox.objects.filter(
            notification_id__in=unclaimed
        ).values_list("notification_id", "due_at"):
            if due_at <= now:
                not_claimed[notification_id] = "busy: another worker holds it"
    return claimed, not_claimed


# A claim renewed this recently covers the next provider call without another UPDATE: a
# batch's calls to a quick provider share one renewal, a slow one renews before each call.
_RENEWED_RECENTLY_SECONDS = 1.0


class _Leases:
    """The claims of one run (one token) over its batch's rows: renewed together, before
    provider calls; a notification whose claim was taken is marked lost and sends no more."""

    def __init__(self, token: uuid.UUID):
        self.token = token
        self.renewed_at = -float("inf")

    def renew(self, dispatches: list[_Dispatch], *, unless_recent: bool = False) -> None:
        """Extend the claims of `dispatches` (one UPDATE); mark lost those no longer ours."""
        holding = [dispatch for dispatch in dispatches if not dispatch.lost]
        if not holding or (
            unless_recent and time.monotonic() - self.renewed_at < _RENEWED_RECENTLY_SECONDS
        ):
            return
        renewed_at = time.monotonic()
        until = timezone.now() + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
        with connection.cursor() as cursor:
            cursor.execute(_RENEW, [until, until, [d.notification.id for d in holding], self.token])
            kept = {notification_id for (notification_id,) in cursor.fetchall()}
        for dispatch in holding:
            if dispatch.notification.id not in kept:
                dispatch.lost = True
        self.renewed_at = renewed_at

    def release(self, notification_ids: list[uuid.UUID]) -> None:
        # A run that stops early (an error) lets the next one start at once, not at lease end.
        Outbox.objects.filter(notification_id__in=notification_ids, claimed_by=self.token).update(
            claimed_by=None, claimed_until=None
        )

    def done(self, notification_ids: list[uuid.UUID]) -> None:
        if notification_ids:
            Outbox.objects.filter(
                notification_id__in=notification_ids, claimed_by=self.token
            ).delete()


def notification_dispatch(*, notification_id: uuid.UUID) -> str:
    """Dispatch every channel of a notification; returns what happened, for the task log."""
    [outcome] = notifications_dispatch(notification_ids=[notification_id])
    return outcome


def notifications_dispatch(*, notification_ids: Sequence[uuid.UUID]) -> list[str]:
    """Dispatch a batch of notifications (what one task names): what happened to each, in
    order. The batch shares its round trips: one claim, one read of each kind, and per
    channel one renewal of the claims, one transaction recording the Sendings (and the
    Ignored and Failed) of up to DISPATCH_CALLS_PER_TRANSACTION calls, the calls, then one
    recording their outcomes (with the next calls' Sendings: _attempts_make).
    Each notification's events come in the order one dispatch alone would record them."""
    ids = list(dict.fromkeys(notification_ids))
    leases = _Leases(uuid.uuid4())
    claimed, outcomes = _outbox_claim(ids, leases.token)
    if claimed:
        # The Sents' follow-ups (callbacks to adopt, the sandbox's callbacks) once, at the end.
        with afterwards.collected():
            try:
                outcomes.update(_claimed_dispatch(list(claimed.values()), leases))
            except BaseException:
                leases.release(list(claimed))
                raise
    return [outcomes[notification_id] for notification_id in notification_ids]


def _claimed_dispatch(outboxes: list[Outbox], leases: _Leases) -> dict[uuid.UUID, str]:
    outcomes: dict[uuid.UUID, str] = {}
    finished: list[uuid.UUID] = []
    dispatches: list[_Dispatch] = []
    for outbox, loaded in _dispatches_load(outboxes):
        notification_id = outbox.notification_id
        if isinstance(loaded, _RequestRefused):
            # Accepted under older rules that the request no longer passes (a limit lowered
            # since): a request-level Failed saying why, never a task failing on every retry.
            _record_request_refused(loaded)
            outcomes[notification_id] = "request refused"
        elif loaded is None:
            # Its day was purged (retention) before it went out: nothing left to send.
            outcomes[notification_id] = "notification purged"
        elif loaded.notification.environment.deleting_at is not None:
            # The tenant is being deleted (accounts.deletion): send nothing more for it.
            outcomes[notification_id] = "environment being deleted"
        else:
            loaded.claim = leases.token
            dispatches.append(loaded)
            continue
        finished.append(notification_id)
    channels = {}
    for dispatch in dispatches:
        channels[dispatch.notification.id] = _channels(dispatch)
        if not channels[dispatch.notification.id]:
            _record_no_channels(dispatch)
    providers = _ProviderChoice()
    for channel in Channel.values:
        group = [
            dispatch
            for dispatch in dispatches
            if channel in channels[dispatch.notification.id]
            and dispatch.states.get(channel) not in _DONE
            and not dispatch.lost
        ]
        if group:
            _channel_dispatch(group, channel, providers, leases)
    for dispatch in dispatches:
        notification_id = dispatch.notification.id
        if dispatch.lost:
            outcomes[notification_id] = _CLAIM_LOST
        else:
            outcomes[notification_id] = "dispatched"
            finished.append(notification_id)
    leases.done(finished)
    return outcomes


class _RequestRefused(Exception):
    def __init__(self, notification: Notification, reason: str):
        super().__init__(reason)
        self.notification = notification
        self.reason = reason


def _record_request_refused(refused: _RequestRefused) -> None:
    notification = refused.notification
    event_record(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        environment_id=notification.environment_id,
        kind=EventKind.FAILED,
        source=SOURCE,
        dedupe_key="failed:request",
        detail=f"The request is no longer valid: {refused.reason}",
    )


def _notifications_load(outboxes: list[Outbox]) -> dict[uuid.UUID, Notification]:
    """The batch's notifications by id, with their environment and account: one query, by
    (id, created_at), the primary key. On Citus one per environment (the outbox row knows
    it), naming it: each runs on the environment's shard."""
    notifications = {}
    for environment_id, group in environment_groups(outboxes, lambda o: o.environment_id):
        rows = Notification.objects.select_related("environment__account").filter(
            id__in=[outbox.notification_id for outbox in group],
            created_at__in={outbox.notification_created_at for outbox in group},
        )
        if environment_id is not None:
            rows = rows.filter(environment_id=environment_id)
        notifications.update((notification.id, notification) for notification in rows)
    return notifications


# The first attempt's Sending's key (logs.timeline.sending_key), in SQL, for its channel.
_FIRST_SENDING_KEY = Concat(Value("sending:"), F("channel"), Value(":1"))


def _dispatches_load(
    outboxes: list[Outbox],
) -> list[tuple[Outbox, "_Dispatch | _RequestRefused | None"]]:
    """What the batch's dispatch reads, a query of each kind for all of it: the
    notifications (None for one purged), their types' templates, their users' preferences,
    their deliveries' states and how many attempts earlier runs made."""
    notifications = _notifications_load(outboxes)
    found = list(notifications.values())
    templates: dict[tuple[int, str], dict[str, ChannelTemplate]] = {}
    for template in ChannelTemplate.objects.filter(
        notification_type__environment_id__in={n.environment_id for n in found},
        notification_type__key__in={n.notification_type for n in found},
    ).select_related("notification_type"):
        key = (template.notification_type.environment_id, template.notification_type.key)
        templates.setdefault(key, {})[template.channel] = template
    preferences = selectors.user_preferences_of(
        (n.environment_id, n.user_id, n.notification_type) for n in found
    )
    states: dict[uuid.UUID, dict[str, str]] = {n.id: {} for n in found}
    attempts: dict[uuid.UUID, dict[str, int]] = {n.id: {} for n in found}
    # One read of each kind for the batch; on Citus one per environment (logs.citus).
    for environment_id, group in environment_groups(found, lambda n: n.environment_id):
        children = {
            "notification_id__in": [n.id for n in group],
            "notification_created_at__in": {n.created_at for n in group},
        }
        if environment_id is not None:
            children["environment_id"] = environment_id
        first_folded: set[tuple[uuid.UUID, str]] = set()
        for notification_id, channel, state, sending_at in Delivery.objects.filter(
            **children
        ).values_list("notification_id", "channel", "state", "sending_at"):
            states[notification_id][channel] = state
            if sending_at is not None:
                # The first attempt's Sending, folded into the delivery (logs.timeline).
                first_folded.add((notification_id, channel))
                attempts[notification_id][channel] = 1
        if any(states[n.id] for n in group):
            # Sending makes the channel's delivery: without one, no run attempted it. Its
            # rows: the later attempts, and the first where it is not folded (or, until the
            # release that stops writing them, too: then the larger count stands).
            for notification_id, channel, count, first in (
                Event.objects.filter(**children, kind=EventKind.SENDING)
                .values_list("notification_id", "channel")
                .annotate(
                    count=Count("id"),
                    first=Count("id", filter=Q(dedupe_key=_FIRST_SENDING_KEY)),
                )
            ):
                folded = (notification_id, channel) in first_folded and not first
                attempts[notification_id][channel] = count + folded
    loaded = []
    for outbox in outboxes:
        notification = notifications.get(outbox.notification_id)
        if notification is None or notification.created_at != outbox.notification_created_at:
            loaded.append((outbox, None))
            continue
        try:
            # Validated when it was accepted; parsed again for the options it carries.
            send_request = send_request_parse(notification.request)
        except RequestInvalid as exc:
            loaded.append((outbox, _RequestRefused(notification, str(exc))))
            continue
        dispatch = _Dispatch(
            notification=notification,
            outbox=outbox,
            send_request=send_request,
            templates=templates.get(
                (notification.environment_id, notification.notification_type), {}
            ),
            preferences=preferences.get(
                (notification.environment_id, notification.user_id, notification.notification_type),
                [],
            ),
            states=states[notification.id],
            attempts=attempts[notification.id],
        )
        loaded.append((outbox, dispatch))
    return loaded


def _channels(dispatch: _Dispatch) -> list[str]:
    """forceChannels when given, else the type's channels and any with inline content."""
    chosen = dispatch.send_request.force_channels
    if chosen is None:
        chosen = set(dispatch.templates) | set(dispatch.send_request.content)
    return [channel for channel in Channel.values if channel in chosen]


def _record_no_channels(dispatch: _Dispatch) -> None:
    # A request-level outcome: nothing to send on any channel, so the status is final.
    notification = dispatch.notification
    event_record(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        environment_id=notification.environment_id,
        kind=EventKind.FAILED,
        source=SOURCE,
        dedupe_key="failed:no_channels",
        detail=f"{notification.notification_type!r} has no channel templates (or no longer "
        "exists): add a template in the console, or send forceChannels with inline content.",
    )


def _spec(
    dispatch: _Dispatch,
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


class _ProviderChoice:
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
    dispatch: _Dispatch
    provider: Provider
    message: OutgoingMessage
    number: int  # this attempt's number (earlier runs' attempts counted)
    why: str  # why it is not the first: said on its Sending line
    error: ProviderError | None = None


def _channel_dispatch(
    group: list[_Dispatch], channel: str, providers: _ProviderChoice, leases: _Leases
) -> None:
    """One channel of a batch's notifications: the ones ignored or that cannot be sent get
    their outcome, the others are sent (with retries), each as a dispatch alone would."""
    outcomes: list[EventSpec] = []
    attempts: list[_Attempt] = []
    maximum = settings.SEND_MAX_ATTEMPTS
    for dispatch in group:
        ignored = _ignored_reason(dispatch, channel)
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
                raise _CannotSend("no provider configured for this channel")
            message = _message_build(dispatch, channel)
        except _CannotSend as exc:
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
    attempts: list[_Attempt], channel: str, leases: _Leases, outcomes: list[EventSpec]
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
        dictionaries = [_dictionary(a.dispatch, channel) for a in new]
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
        results = _calls(calls, start_by=leases.renewed_at + _RENEWED_RECENTLY_SECONDS)
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


# Ignored: the dashboard flag, then the user's preference, then the plan limit.


def _ignored_reason(dispatch: _Dispatch, channel: str) -> tuple[str, str] | None:
    label = dispatch.channel_label[channel]
    notification = dispatch.notification
    template = dispatch.templates.get(channel)
    if template is not None and not template.enabled:
        return (
            EventSubKind.DASHBOARD_PREFERENCE,
            f"The {label} channel of {notification.notification_type!r} is turned off in the "
            "console.",
        )
    preference = _preference_for(dispatch, channel)
    if preference is not None and preference.delivery == UserPreference.Delivery.OFF:
        return (
            EventSubKind.USER_PREFERENCE,
            f"User {notification.user_id!r} turned {label} off for "
            f"{notification.notification_type!r}.",
        )
    if not _plan_allows(dispatch):
        limit = notification.environment.account.plan_monthly_limit
        return (
            EventSubKind.PLAN_LIMIT,
            f"The account's plan allows {limit} notifications a month and they are used up.",
        )
    return None


def _preference_for(dispatch: _Dispatch, channel: str) -> UserPreference | None:
    """The most specific preference that applies: one naming the sub-notification beats one
    for the whole type, and one naming the channel beats one for every channel."""
    sub_id = dispatch.send_request.sub_notification_id
    applicable = [
        preference
        for preference in dispatch.preferences
        if preference.channel in ("", channel) and preference.sub_notification_id in ("", sub_id)
    ]
    if not applicable:
        return None
    return max(applicable, key=lambda p: (bool(p.sub_notification_id), bool(p.channel)))


def _plan_allows(dispatch: _Dispatch) -> bool:
    """Count the notification against its account's month once, the first time a channel
    gets this far; a re-run finds it counted (Outbox.plan_counted)."""
    account = dispatch.notification.environment.account
    if account.plan_monthly_limit is None:
        return True
    if dispatch.plan_allowed is None:
        dispatch.plan_allowed = _plan_count(
            account.id, account.plan_monthly_limit, dispatch.outbox.pk
        )
    return dispatch.plan_allowed


def _plan_count(account_id: int, limit: int, outbox_pk: int) -> bool:
    month = timezone.now().date().replace(day=1)
    with transaction.atomic():
        outbox = Outbox.objects.select_for_update().get(pk=outbox_pk)
        if outbox.plan_counted:
            return True
        PlanUsage.objects.bulk_create(
            [PlanUsage(account_id=account_id, month=month)], ignore_conflicts=True
        )
        # One conditional UPDATE: concurrent workers can never push the count past the limit.
        counted = PlanUsage.objects.filter(
            account_id=account_id, month=month, notifications__lt=limit
        ).update(notifications=F("notifications") + 1)
        if counted:
            Outbox.objects.filter(pk=outbox_pk).update(plan_counted=True)
        return bool(counted)


# Content and address.


def _template_parts(dispatch: _Dispatch, channel: str) -> tuple[dict[str, str], frozenset[str]]:
    """Each part's template source, and which parts came inline with the send."""
    template = dispatch.templates.get(channel)
    inline = dispatch.send_request.content.get(channel, {})
    if template is None and not inline:
        raise _CannotSend(
            f"{dispatch.notification.notification_type!r} has no "
            f"{dispatch.channel_label[channel]} template: add one in the console or send "
            f"inline content for {CHANNEL_TO_WIRE[channel]}."
        )
    return content_parts(
        channel=channel,
        template=None
        if template is None
        else {"subject": template.subject, "html": template.html, "text": template.text},
        inline=inline,
    )


def _dictionary(dispatch: _Dispatch, channel: str) -> bytes:
    """What the content is stored compressed with (logs/content.py): the template it was
    rendered from, but for the parts sent inline (no template); for an email without a text
    part, the text derived from the template's HTML as _content derives the sent one."""
    parts, inline_parts = _template_parts(dispatch, channel)
    html = "" if "html" in inline_parts else parts["html"]
    text = "" if "text" in inline_parts else parts["text"]
    if channel == Channel.EMAIL and not parts["text"] and html:
        text = _derived_text(html)
    return template_dictionary(html=html, text=text)


@lru_cache(maxsize=256)
def _derived_text(html: str) -> str:
    """The plain-text part of an HTML-only email (for a template, once per process)."""
    return strip_tags(html).strip()


def _content(dispatch: _Dispatch, channel: str) -> Content:
    notification = dispatch.notification
    parts, inline_parts = _template_parts(dispatch, channel)
    try:
        # A render over a limit (loops, output, time) is a RenderError too: Failed, final.
        content = content_render(
            parts=parts,
            merge_tags=notification.merge_tags,
            replace=dispatch.send_request.replace,
            inline_parts=inline_parts,
        )
    except RenderError as exc:
        raise _CannotSend(str(exc)) from None
    if channel == Channel.EMAIL and not content.text and content.html:
        # The plain-text part of an HTML-only template, so every client has something.
        content = Content(
            subject=content.subject, html=content.html, text=strip_tags(content.html).strip()
        )
    return content


_MISSING_ADDRESS = {
    Channel.EMAIL: ("email", "user.email"),
    Channel.SMS: ("number", "user.number"),
    Channel.CALL: ("number", "user.number"),
}


def _destination(dispatch: _Dispatch, channel: str) -> str:
    if channel not in _MISSING_ADDRESS:
        return dispatch.notification.user_id
    column, field_name = _MISSING_ADDRESS[channel]
    address = getattr(dispatch.notification, column)
    if not address:
        raise _CannotSend(
            f"No {field_name} for user {dispatch.notification.user_id!r}: send {field_name} "
            "or identify the user (POST /{clientId}/users/{userId}) first."
        )
    return address


def _message_build(dispatch: _Dispatch, channel: str) -> OutgoingMessage:
    notification = dispatch.notification
    destination = _destination(dispatch, channel)
    content = _content(dispatch, channel)
    options = dispatch.send_request.email_options
    inline = dispatch.send_request.content.get(channel, {})
    from_address = inline.get("from_address") or options.from_address
    from_name = inline.get("from_name") or options.from_name
    if channel == Channel.EMAIL:
        # Checked at intake too; again here, for a domain an owner removed since.
        refusal = sender_refusal(
            environment_id=notification.environment_id,
            address=from_address,
            field_name="The From address",
        )
        if refusal:
            raise _CannotSend(refusal)
    from_email = ""
    if from_address or from_name:
        from_email = formataddr((from_name, from_address or settings.DEFAULT_FROM_EMAIL))
    return OutgoingMessage(
        environment_id=notification.environment_id,
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        notification_type=notification.notification_type,
        channel=channel,
        user_id=notification.user_id,
        sub_notification_id=dispatch.send_request.sub_notification_id,
        destination=destination,
        content=content,
        from_email=from_email,
        reply_to=options.reply_to,
        cc=options.cc,
        bcc=options.bcc,
    )


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
            # Blank when it is the notification's own address (always, as _destination
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


# The sweeper.


def outbox_sweep(*, now: datetime | None = None, limit: int = 1000) -> list[uuid.UUID]:
    """Enqueue outbox rows whose time has come: sends no worker took within
    OUTBOX_SWEEP_AFTER_SECONDS (broker down or message lost), dispatches whose worker died
    (lease expired), and scheduled sends now due. Rows locked by another sweeper are
    skipped, and each row's next look backs off, so a long queue is not flooded."""
    now = now or timezone.now()
    grace = settings.OUTBOX_SWEEP_AFTER_SECONDS
    with transaction.atomic():
        rows = list(
            Outbox.objects.select_for_update(skip_locked=True)
            .filter(next_sweep_at__lte=now)
            .order_by("next_sweep_at")[:limit]
        )
        for row in rows:
            row.next_sweep_at = now + timedelta(
                seconds=grace * 2 ** min(row.sweeps, _MAX_SWEEP_DOUBLINGS)
            )
            row.sweeps += 1
        Outbox.objects.bulk_update(rows, ["next_sweep_at", "sweeps"])
        ids = [row.notification_id for row in rows]
        transaction.on_commit(lambda: [dispatch_enqueue(i) for i in ids])
    if ids:
        logger.info("Outbox sweeper enqueued %d notification(s)", len(ids))
    return ids
