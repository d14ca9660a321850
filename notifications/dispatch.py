"""Dispatch: from an accepted notification to a provider call per channel. The entry points
(notification_dispatch, notifications_dispatch: what the tasks run) and the request-level
outcomes; each step is a module of its own:

- notifications/outbox.py: the claim on a batch's outbox rows, its leases, and the sweeper
  that makes the hand-off durable;
- notifications/dispatch_load.py: what a run reads for its batch (Dispatch);
- notifications/channel_rules.py: which channels a notification goes on, which are ignored;
- notifications/messages.py: a channel's message: content rendered, address checked;
- notifications/sending.py: the provider calls, their retries, the events they record.

Per channel, in this order: the dashboard flag (ChannelTemplate.enabled) → the user's
preference → the plan's monthly limit, each an Ignored event with its sub-kind; then the
content is rendered (python-liquid) and the address checked, a failure of either a Failed
event naming the tag or field; then Sending, the provider call outside any transaction, and
Sent with the provider's message id or Failed with its error.

Running it twice records nothing twice: one worker at a time holds a notification (a claim
on its outbox row with an expiry, renewed before each provider call; a dead worker's claim
runs out and the sweeper hands the notification on), a channel that already has an outcome
is skipped, and the outbox row is deleted only when every channel is done (the claim is a
row, not a session advisory lock: notifications/outbox.py says why).

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

import uuid
from collections.abc import Sequence

from config import afterwards
from logs.services import event_record
from logs.vocabulary import Channel, DeliveryState, EventKind
from notifications.channel_rules import channels_chosen
from notifications.dispatch_load import Dispatch, RequestRefused, dispatches_load
from notifications.models import Outbox
from notifications.outbox import Leases, outbox_claim
from notifications.sending import SOURCE, ProviderChoice, channel_dispatch

# A channel in one of these states has its outcome: a re-run leaves it alone.
_DONE = frozenset(
    {DeliveryState.IGNORED, DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.FAILED}
)

_CLAIM_LOST = "claim lost: its lease ran out and another worker took it"


def notification_dispatch(*, notification_id: uuid.UUID) -> str:
    """Dispatch every channel of a notification; returns what happened, for the task log."""
    [outcome] = notifications_dispatch(notification_ids=[notification_id])
    return outcome


def notifications_dispatch(*, notification_ids: Sequence[uuid.UUID]) -> list[str]:
    """Dispatch a batch of notifications (what one task names): what happened to each, in
    order. The batch shares its round trips: one claim, one read of each kind, and per
    channel one renewal of the claims, one transaction recording the Sendings (and the
    Ignored and Failed) of up to DISPATCH_CALLS_PER_TRANSACTION calls, the calls, then one
    recording their outcomes (with the next calls' Sendings: notifications/sending.py).
    Each notification's events come in the order one dispatch alone would record them."""
    ids = list(dict.fromkeys(notification_ids))
    leases = Leases(uuid.uuid4())
    claimed, outcomes = outbox_claim(ids, leases.token)
    if claimed:
        # The Sents' follow-ups (callbacks to adopt, the sandbox's callbacks) once, at the end.
        with afterwards.collected():
            try:
                outcomes.update(_claimed_dispatch(list(claimed.values()), leases))
            except BaseException:
                leases.release(list(claimed))
                raise
    return [outcomes[notification_id] for notification_id in notification_ids]


def _claimed_dispatch(outboxes: list[Outbox], leases: Leases) -> dict[uuid.UUID, str]:
    outcomes: dict[uuid.UUID, str] = {}
    finished: list[uuid.UUID] = []
    dispatches: list[Dispatch] = []
    for outbox, loaded in dispatches_load(outboxes):
        notification_id = outbox.notification_id
        if isinstance(loaded, RequestRefused):
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
        channels[dispatch.notification.id] = channels_chosen(dispatch)
        if not channels[dispatch.notification.id]:
            _record_no_channels(dispatch)
    providers = ProviderChoice()
    for channel in Channel.values:
        group = [
            dispatch
            for dispatch in dispatches
            if channel in channels[dispatch.notification.id]
            and dispatch.states.get(channel) not in _DONE
            and not dispatch.lost
        ]
        if group:
            channel_dispatch(group, channel, providers, leases)
    for dispatch in dispatches:
        notification_id = dispatch.notification.id
        if dispatch.lost:
            outcomes[notification_id] = _CLAIM_LOST
        else:
            outcomes[notification_id] = "dispatched"
            finished.append(notification_id)
    leases.done(finished)
    return outcomes


def _record_request_refused(refused: RequestRefused) -> None:
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


def _record_no_channels(dispatch: Dispatch) -> None:
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
