"""Status rules: a delivery's state from its events, a notification's status from its deliveries.

Pure functions over plain frozen dataclasses: no database, no models. Services load rows, turn
them into `EventFact`s, call these functions and store the result; the rules themselves are
property-tested in tests/logs/test_status.py.

Providers send callbacks late, twice and out of order, so every rule reads the *set* of events,
never the order they arrived in. Events are first de-duplicated and sorted by a total key
(`event_sort_key`); every "earliest" or "latest" below is taken in that order, so the same set
of events gives the same outcome, times included, however it arrived.

Precedence of the rules, strongest first:

1. Ignored (any reason): the channel was not sent; nothing else counts.
2. A permanent failure (Failed with any sub-kind but Delivery Delay, or none): providers do not
   un-fail a message, so it wins over Delivered whatever the timestamps say. A bounce often
   arrives after the receiving server first accepted the message (an asynchronous bounce),
   and provider clocks are not comparable closely enough to trust "failed before delivered".
3. Delivered at or after the latest Delivery Delay (a deferral is retried; a later delivery
   replaces it).
4. A Delivery Delay with no Delivered at or after it: failed, sub-kind Delivery Delay.
5. Progress otherwise: received < sending < sent, and it never goes backwards (a Sending that
   arrives after Sent leaves the delivery sent).

Engagement (opened, clicked, complained, unsubscribed) is recorded and never changes a state.

A notification's status (`notification_status`) comes from its channels' states and from its
request-level outcomes: Failed or Ignored events without a channel, recorded when the request
itself was refused or stopped before any channel was chosen (bad parameters, an unknown type,
the plan limit). Strongest first:

1. A request-level Failed: failure, whatever the channels say. The request itself was refused,
   and a Failed without a sub-kind is final.
2. Any channel that was not ignored failed: failure, even while others are still pending.
3. Every channel that was not ignored reached the user (delivered, or sent for a provider that
   never reports delivery): success. This holds vacuously when every channel was ignored, and
   when there is no channel at all but a request-level Ignored: a request-level Ignored counts
   exactly as one more ignored channel, so it never changes what the channels decide.
4. Received otherwise, including no channel and no request-level outcome (not dispatched yet).

Each channel also has a status of its own (`delivery_status`): failure, success or received
as rules 2 and 3 read it, none when ignored. The notification's rules above are made of it,
and a search for a channel and a status ("SMS + Failure") matches it.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from logs.vocabulary import (
    REQUEST_OUTCOME_KINDS,
    SUB_KINDS_BY_KIND,
    DeliveryState,
    EventKind,
    EventSubKind,
    NotificationStatus,
)


@dataclass(frozen=True, kw_only=True)
class EventFact:
    """One event of one delivery (one channel), as the status rules see it.

    Keyword-only so that the optional `sub_kind` can be declared before the required
    `occurred_at` while call sites stay unambiguous.
    """

    kind: str  # an EventKind value
    sub_kind: str = ""  # an EventSubKind value allowed for `kind` (SUB_KINDS_BY_KIND), or ""
    occurred_at: datetime  # timezone-aware; the provider's time when it gives one
    # Tie-breaker identity (provider event id or payload hash): two different events at the
    # same instant with the same kind and sub-kind still sort in one fixed order.
    key: str = ""

    def __post_init__(self) -> None:
        try:
            EventKind(self.kind)
        except ValueError:
            raise ValueError(
                f"Unknown event kind {str(self.kind)!r}: use an EventKind value "
                f"({', '.join(repr(k.value) for k in EventKind)})."
            ) from None
        allowed = SUB_KINDS_BY_KIND.get(self.kind, frozenset())
        if self.sub_kind and self.sub_kind not in allowed:
            choices = "".join(f", {s.value!r}" for s in sorted(allowed))
            raise ValueError(
                f"Sub-kind {str(self.sub_kind)!r} does not belong to kind {str(self.kind)!r}: "
                f'use ""{choices} (logs.vocabulary.SUB_KINDS_BY_KIND).'
            )
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError(
                f"occurred_at {self.occurred_at!r} is naive: pass an aware datetime "
                "(e.g. datetime.now(UTC)); all log times are UTC."
            )


@dataclass(frozen=True, kw_only=True)
class DeliveryOutcome:
    """What a delivery's events add up to.

    Times describe the outcome, so each is set only when it means something for it:
    `sent_at` is the earliest Sent whatever the state (a fact of the timeline);
    `delivered_at` is set only when the state is delivered; `failed_at` only when failed.
    All times are returned in UTC.
    """

    state: str  # a DeliveryState value
    sub_kind: str = ""  # the sub-kind of the event that decided the state, "" if none did
    sent_at: datetime | None = None  # the earliest Sent
    delivered_at: datetime | None = None  # the Delivered that decided a delivered state
    failed_at: datetime | None = None  # the Failed that decided a failed state


# Equal-time events sort in the order a delivery normally moves through (the EventKind
# declaration order), then by sub-kind declaration order (which for Ignored is the dispatch
# order: dashboard, user, plan limit), with "" after every named sub-kind so that at equal
# times an event that names its reason is preferred, then by the event's own key.
_KIND_RANK = {kind: rank for rank, kind in enumerate(EventKind)}
_SUB_KIND_RANK = {sub: rank for rank, sub in enumerate(s for s in EventSubKind if s)}
_NO_SUB_KIND_RANK = len(_SUB_KIND_RANK)

_PROGRESS = (  # forward-only progress before any outcome, weakest first
    (EventKind.RECEIVED, DeliveryState.RECEIVED),
    (EventKind.SENDING, DeliveryState.SENDING),
    (EventKind.SENT, DeliveryState.SENT),
)


def event_sort_key(event: EventFact) -> tuple[datetime, int, int, str]:
    """The total order of a delivery's events: time, then kind, sub-kind and key."""
    return (*event_sort_key_parts(event.occurred_at, event.kind, event.sub_kind), event.key)


def event_sort_key_parts(
    occurred_at: datetime, kind: str, sub_kind: str
) -> tuple[datetime, int, int]:
    """The first three terms of event_sort_key (time, kind, sub-kind), for a timeline of
    events that are not facts (logs.timeline)."""
    return (occurred_at, _KIND_RANK[kind], _SUB_KIND_RANK.get(sub_kind, _NO_SUB_KIND_RANK))


def is_permanent_failure(event: EventFact) -> bool:
    """Failed with any reason but Delivery Delay (which a later Delivered replaces)."""
    return event.kind == EventKind.FAILED and event.sub_kind != EventSubKind.DELIVERY_DELAY


def delivery_outcome(
    events: Iterable[EventFact], *, reports_delivery: bool = True
) -> DeliveryOutcome:
    """The state of one delivery from the set of its events (order and duplicates ignored).

    `reports_delivery` does not change the state: a provider that never reports delivery
    (plain SMTP) leaves the channel at sent, and `notification_status` is where that sent
    counts as final. It is accepted so callers can pass a channel's provider facts uniformly.
    """
    timeline = sorted(set(events), key=event_sort_key)
    state, decided_by = _decide(timeline)
    decided_at = _utc(decided_by.occurred_at) if decided_by else None
    sent = [event for event in timeline if event.kind == EventKind.SENT]
    return DeliveryOutcome(
        state=state,
        sub_kind=decided_by.sub_kind if decided_by else "",
        sent_at=_utc(sent[0].occurred_at) if sent else None,
        delivered_at=decided_at if state == DeliveryState.DELIVERED else None,
        failed_at=decided_at if state == DeliveryState.FAILED else None,
    )


def _decide(timeline: list[EventFact]) -> tuple[str, EventFact | None]:
    """The state and the event that decided it (None when only progress decided it).

    `timeline` is de-duplicated and sorted by `event_sort_key`, so [0] is the earliest and
    [-1] the latest of any selection.
    """
    if ignored := [event for event in timeline if event.kind == EventKind.IGNORED]:
        # Dispatch stops at the first reason; if several were recorded, the earliest names it.
        return DeliveryState.IGNORED, ignored[0]
    if permanent := [event for event in timeline if is_permanent_failure(event)]:
        # The first permanent failure is when the message failed; later ones repeat it.
        return DeliveryState.FAILED, permanent[0]
    delays = [event for event in timeline if event.sub_kind == EventSubKind.DELIVERY_DELAY]
    # Only a Delivered at or after the latest deferral replaces it; an equal time counts as
    # after, because a delivery is the only way a deferral ends well.
    not_before = delays[-1].occurred_at if delays else None
    if delivered := [
        event
        for event in timeline
        if event.kind == EventKind.DELIVERED
        and (not_before is None or event.occurred_at >= not_before)
    ]:
        return DeliveryState.DELIVERED, delivered[0]
    if delays:
        return DeliveryState.FAILED, delays[-1]
    return _progress(timeline), None


def _progress(timeline: list[EventFact]) -> str:
    """The furthest progress reached; a late Sending never takes a Sent back."""
    kinds = {event.kind for event in timeline}
    reached = [state for kind, state in _PROGRESS if kind in kinds]
    return reached[-1] if reached else DeliveryState.RECEIVED


def _utc(moment: datetime) -> datetime:
    # Equal instants in different zones compare equal but print differently; returning UTC
    # keeps the outcome identical whichever of two equal events was picked.
    return moment.astimezone(UTC)


def notification_status(
    deliveries: Iterable[tuple[str, bool]], *, request_outcomes: Iterable[str] = ()
) -> str:
    """A notification's status from (delivery state, provider reports delivery) per channel
    and the kinds of its request-level outcomes ("failed", "ignored": the kinds of its events
    without a channel, Received aside); the rules are in the module docstring."""
    channels = [(DeliveryState(state), reports) for state, reports in deliveries]
    outcomes = {_request_outcome(kind) for kind in request_outcomes}
    if EventKind.FAILED in outcomes:
        return NotificationStatus.FAILURE
    if not channels and not outcomes:
        return NotificationStatus.RECEIVED
    # An ignored channel has no status of its own: it counts neither way.
    statuses = {delivery_status(state, reports) for state, reports in channels} - {""}
    if NotificationStatus.FAILURE in statuses:
        return NotificationStatus.FAILURE
    # Vacuously true when every channel was ignored, or only the request was.
    if statuses <= {NotificationStatus.SUCCESS}:
        return NotificationStatus.SUCCESS
    return NotificationStatus.RECEIVED


def delivery_status(state: str, reports_delivery: bool) -> str:
    """One channel's own status: failure when it failed, success when it reached the user
    (delivered, or sent for a provider that never reports delivery), received while it is
    on its way; "" for an ignored channel, which was never sent. A notification's status
    is made of these (`notification_status`), and a search for a channel with a status
    matches this one (logs.search_conditions)."""
    state = DeliveryState(state)
    if state == DeliveryState.IGNORED:
        return ""
    if state == DeliveryState.FAILED:
        return NotificationStatus.FAILURE
    if _reached_user(state, reports_delivery):
        return NotificationStatus.SUCCESS
    return NotificationStatus.RECEIVED


def delivery_states_of_status(status: str) -> list[tuple[str, bool]]:
    """Every (delivery state, provider reports delivery) whose `delivery_status` is `status`,
    in a fixed order: what a search for a channel's status looks for in the deliveries."""
    return [
        (state.value, reports)
        for state in DeliveryState
        for reports in (True, False)
        if delivery_status(state, reports) == status
    ]


def _request_outcome(kind: str) -> EventKind:
    if kind not in REQUEST_OUTCOME_KINDS:
        raise ValueError(
            f"{str(kind)!r} is not a request-level outcome: pass the kinds of the "
            "notification's events without a channel other than Received "
            f"({', '.join(repr(k.value) for k in sorted(REQUEST_OUTCOME_KINDS))})."
        )
    return EventKind(kind)


def _reached_user(state: str, reports_delivery: bool) -> bool:
    # WORKAROUND: plain SMTP (and any provider that never reports delivery) says nothing after
    # accepting the message, so its Sent is the last word and counts as reaching the user.
    return state == DeliveryState.DELIVERED or (
        state == DeliveryState.SENT and not reports_delivery
    )
