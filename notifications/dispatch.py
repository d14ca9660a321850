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
call interrupted that way may reach the user twice. The window is the provider call itself.

Transient provider errors are retried in the task with exponential backoff; each attempt is a
Sending event whose detail says why the previous one failed, and only the last failure is a
Failed event (a Failed without sub-kind is final for the status rules).
"""

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formataddr

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.html import strip_tags

from logs.models import Delivery, Event, Notification
from logs.services import event_record
from logs.vocabulary import Channel, DeliveryState, EventKind, EventSubKind
from notifications import selectors
from notifications.models import ChannelTemplate, Outbox, PlanUsage, UserPreference
from notifications.providers import (
    Accepted,
    OutgoingMessage,
    Provider,
    ProviderError,
    provider_for_channel,
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
    plan_allowed: bool | None = None
    claim: uuid.UUID | None = None
    channel_label: dict[str, str] = field(default_factory=lambda: dict(Channel.choices))


class _ClaimLost(Exception):
    """The claim ran out and another worker took the notification: stop before sending."""


def _outbox_claim(notification_id: uuid.UUID, token: uuid.UUID) -> Outbox | str:
    """Claim the outbox row for this run: one UPDATE, so of two workers racing the second
    waits on the row and then finds the claim taken. Returns the row, or why not."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    # While a worker holds it, the sweeper leaves the row alone (next_sweep_at); when the
    # claim runs out, the sweeper hands the notification to another worker.
    claimed = (
        Outbox.objects.filter(notification_id=notification_id, due_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .update(claimed_by=token, claimed_until=until, next_sweep_at=until)
    )
    if claimed:
        return Outbox.objects.get(notification_id=notification_id)
    row = Outbox.objects.filter(notification_id=notification_id).first()
    if row is not None and row.due_at <= now:
        return "busy: another worker holds it"
    # Nothing claimed: already dispatched (row gone) or not due yet (the schedule moved).
    return "nothing to do: dispatched already, or not due"


def _lease_renew(notification_id: uuid.UUID, token: uuid.UUID) -> None:
    """Extend this run's claim before a provider call; a run whose claim ran out (and was
    taken by another worker) stops here instead of sending a second time."""
    until = timezone.now() + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    renewed = Outbox.objects.filter(notification_id=notification_id, claimed_by=token).update(
        claimed_until=until, next_sweep_at=until
    )
    if not renewed:
        raise _ClaimLost


def _claim_release(notification_id: uuid.UUID, token: uuid.UUID) -> None:
    # A run that stops early (an error) lets the next one start at once, not at lease end.
    Outbox.objects.filter(notification_id=notification_id, claimed_by=token).update(
        claimed_by=None, claimed_until=None
    )


def notification_dispatch(*, notification_id: uuid.UUID) -> str:
    """Dispatch every channel of a notification; returns what happened, for the task log."""
    token = uuid.uuid4()
    claimed = _outbox_claim(notification_id, token)
    if isinstance(claimed, str):
        return claimed
    try:
        return _claimed_dispatch(claimed, token)
    except _ClaimLost:
        return "claim lost: its lease ran out and another worker took it"
    except BaseException:
        _claim_release(notification_id, token)
        raise


def _claimed_dispatch(outbox: Outbox, token: uuid.UUID) -> str:
    mine = Outbox.objects.filter(pk=outbox.pk, claimed_by=token)
    try:
        dispatch = _dispatch_load(outbox)
    except Notification.DoesNotExist:
        # Its day was purged (retention) before it went out: nothing left to send.
        mine.delete()
        return "notification purged"
    except _RequestRefused as refused:
        # Accepted under older rules that the request no longer passes (a limit lowered
        # since): a request-level Failed saying why, never a task failing on every retry.
        _record_request_refused(refused)
        mine.delete()
        return "request refused"
    dispatch.claim = token
    if dispatch.notification.environment.deleting_at is not None:
        # The tenant is being deleted (accounts.deletion): send nothing more for it.
        mine.delete()
        return "environment being deleted"
    channels = _channels(dispatch)
    if not channels:
        _record_no_channels(dispatch)
    for channel in channels:
        if dispatch.states.get(channel) not in _DONE:
            _channel_dispatch(dispatch, channel)
    mine.delete()
    return "dispatched"


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
        kind=EventKind.FAILED,
        source=SOURCE,
        dedupe_key="failed:request",
        detail=f"The request is no longer valid: {refused.reason}",
    )


def _dispatch_load(outbox: Outbox) -> _Dispatch:
    notification = Notification.objects.select_related("environment__account").get(
        id=outbox.notification_id, created_at=outbox.notification_created_at
    )
    try:
        # Validated when it was accepted; parsed again for the options it carries.
        send_request = send_request_parse(notification.request)
    except RequestInvalid as exc:
        raise _RequestRefused(notification, str(exc)) from None
    templates = {
        template.channel: template
        for template in ChannelTemplate.objects.filter(
            notification_type__environment_id=notification.environment_id,
            notification_type__key=notification.notification_type,
        )
    }
    preferences = list(
        selectors.user_preferences(
            environment=notification.environment,
            user_id=notification.user_id,
            notification_type=notification.notification_type,
        )
    )
    states = dict(
        Delivery.objects.filter(
            notification_id=notification.id, notification_created_at=notification.created_at
        ).values_list("channel", "state")
    )
    return _Dispatch(
        notification=notification,
        outbox=outbox,
        send_request=send_request,
        templates=templates,
        preferences=preferences,
        states=states,
    )


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
        kind=EventKind.FAILED,
        source=SOURCE,
        dedupe_key="failed:no_channels",
        detail=f"{notification.notification_type!r} has no channel templates (or no longer "
        "exists): add a template in the console, or send forceChannels with inline content.",
    )


def _record(
    dispatch: _Dispatch,
    channel: str,
    kind: str,
    *,
    dedupe_key: str,
    detail: str,
    sub_kind: str = "",
    delivery_fields: dict | None = None,
    payload: dict | None = None,
) -> None:
    notification = dispatch.notification
    event_record(
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


def _channel_dispatch(dispatch: _Dispatch, channel: str) -> None:
    ignored = _ignored_reason(dispatch, channel)
    if ignored is not None:
        sub_kind, detail = ignored
        _record(
            dispatch,
            channel,
            EventKind.IGNORED,
            sub_kind=sub_kind,
            detail=detail,
            dedupe_key=f"ignored:{channel}",
        )
        return
    provider = provider_for_channel(
        environment_id=dispatch.notification.environment_id, channel=channel
    )
    try:
        if provider.name == "none":
            raise _CannotSend("no provider configured for this channel")
        message = _message_build(dispatch, channel)
    except _CannotSend as exc:
        _record(
            dispatch,
            channel,
            EventKind.FAILED,
            detail=str(exc),
            dedupe_key=f"failed:{channel}",
            delivery_fields={"error_code": "bad_parameters", "error_message": str(exc)},
        )
        return
    _attempts(dispatch, channel, provider, message)


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


# Attempts.


def _previous_attempts(dispatch: _Dispatch, channel: str) -> int:
    return Event.objects.filter(
        notification_id=dispatch.notification.id,
        notification_created_at=dispatch.notification.created_at,
        channel=channel,
        kind=EventKind.SENDING,
    ).count()


def _attempts(
    dispatch: _Dispatch, channel: str, provider: Provider, message: OutgoingMessage
) -> None:
    maximum = settings.SEND_MAX_ATTEMPTS
    first = _previous_attempts(dispatch, channel) + 1
    why = "" if first == 1 else "; the previous attempt was interrupted"
    error: ProviderError | None = None
    for attempt in range(first, maximum + 1):
        _lease_renew(dispatch.notification.id, dispatch.claim)
        _record_sending(dispatch, channel, provider, message, attempt, why)
        try:
            # The at-least-once window: killed between here and _record_sent, the channel is
            # sent again by the next worker. Email repeats its Message-ID (receivers dedupe);
            # Twilio's Messages and Calls APIs take no idempotency key, so an SMS or a call
            # may then reach the user twice.
            accepted = provider.send(message)
        except ProviderError as exc:
            error = exc
            if exc.transient and attempt < maximum:
                why = f"; attempt {attempt} failed: {_error_text(exc)}"
                time.sleep(settings.SEND_RETRY_BACKOFF_SECONDS * 2 ** (attempt - first))
                continue
            break
        _record_sent(dispatch, channel, provider, accepted)
        provider.after_sent(message, accepted)
        return
    _record_failed(dispatch, channel, provider, error, maximum)


def _error_text(error: ProviderError) -> str:
    return f"{error.message} (code {error.code})" if error.code else error.message


def _record_sending(
    dispatch: _Dispatch,
    channel: str,
    provider: Provider,
    message: OutgoingMessage,
    attempt: int,
    why: str,
) -> None:
    content = message.content
    _record(
        dispatch,
        channel,
        EventKind.SENDING,
        dedupe_key=f"sending:{channel}:{attempt}",
        detail=f"Attempt {attempt} of {settings.SEND_MAX_ATTEMPTS} via {provider.name}{why}.",
        delivery_fields={
            "provider": provider.name,
            "destination": message.destination,
            "subject": content.subject,
            "html": content.html,
            "text": content.text,
        },
        payload=_envelope(message),
    )


def _envelope(message: OutgoingMessage) -> dict | None:
    """What the delivery's columns do not hold of what was handed over: an email's sender
    and other recipients (the console shows them on the Sending line)."""
    if message.channel != Channel.EMAIL:
        return None
    return {
        "from": message.from_email or settings.DEFAULT_FROM_EMAIL,
        "to": [message.destination],
        "cc": message.cc,
        "bcc": message.bcc,
        "reply_to": message.reply_to,
    }


def _record_sent(dispatch: _Dispatch, channel: str, provider: Provider, accepted: Accepted) -> None:
    _record(
        dispatch,
        channel,
        EventKind.SENT,
        dedupe_key=f"sent:{channel}",
        detail=f"Accepted by {provider.name} as {accepted.provider_message_id}.",
        delivery_fields={
            "provider_message_id": accepted.provider_message_id,
            "reports_delivery": accepted.reports_delivery,
            "error_code": "",
            "error_message": "",
        },
    )


def _record_failed(
    dispatch: _Dispatch, channel: str, provider: Provider, error: ProviderError | None, maximum: int
) -> None:
    if error is None:
        # Every attempt was used by runs that died mid-call (worker killed): stop here
        # rather than loop; the provider may or may not have the message.
        error = ProviderError(
            f"Gave up after {maximum} attempts; the last was interrupted before {provider.name} "
            "answered.",
            code="interrupted",
        )
    retried = " after retries" if error.transient else ""
    _record(
        dispatch,
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
