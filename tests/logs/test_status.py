"""The status rules: properties over random event sets, then named cases with exact outcomes.

Pure functions, no database: nothing here touches Django models or needs django_db.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logs.status import (
    DeliveryOutcome,
    EventFact,
    delivery_outcome,
    delivery_states_of_status,
    delivery_status,
    notification_status,
)
from logs.vocabulary import (
    SUB_KINDS_BY_KIND,
    DeliveryState,
    EventKind,
    EventSubKind,
    NotificationStatus,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NEW_YORK = timezone(timedelta(hours=-5))
TOKYO = timezone(timedelta(hours=9))

PROPERTY = settings(max_examples=500, deadline=None)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def ev(kind: str, minute: int, sub_kind: str = "", key: str = "") -> EventFact:
    return EventFact(kind=kind, sub_kind=sub_kind, occurred_at=at(minute), key=key)


# --- strategies -------------------------------------------------------------------------------

# Every valid (kind, sub_kind) pair: each kind with no sub-kind, plus the sub-kinds it may carry.
VALID_PAIRS = [(kind.value, "") for kind in EventKind] + sorted(
    (kind, sub_kind) for kind, sub_kinds in SUB_KINDS_BY_KIND.items() for sub_kind in sub_kinds
)
PERMANENT_FAILURES = [
    (kind, sub_kind)
    for kind, sub_kind in VALID_PAIRS
    if kind == EventKind.FAILED and sub_kind != EventSubKind.DELIVERY_DELAY
]
ENGAGEMENTS = [(kind, sub_kind) for kind, sub_kind in VALID_PAIRS if kind == EventKind.ENGAGEMENT]


def facts(pairs: list[tuple[str, str]]) -> st.SearchStrategy[EventFact]:
    """Events drawn from `pairs`, crowded into a few minutes and keys so ties are common.

    The same instant is sometimes written in another zone, as providers do.
    """
    return st.builds(
        lambda pair, minute, zone, key: EventFact(
            kind=pair[0],
            sub_kind=pair[1],
            occurred_at=at(minute).astimezone(zone),
            key=key,
        ),
        st.sampled_from(pairs),
        st.integers(min_value=0, max_value=6),
        st.sampled_from([UTC, NEW_YORK, TOKYO]),
        st.sampled_from(["", "evt-1", "evt-2"]),
    )


any_event = facts(VALID_PAIRS)
event_lists = st.lists(any_event, max_size=10)
not_ignored_event_lists = st.lists(
    facts([pair for pair in VALID_PAIRS if pair[0] != EventKind.IGNORED]), max_size=10
)
channels = st.tuples(st.sampled_from([state.value for state in DeliveryState]), st.booleans())
channel_lists = st.lists(channels, max_size=6)
# The kinds of a notification's request-level outcomes (its events without a channel).
request_outcome_lists = st.lists(st.sampled_from([EventKind.FAILED, EventKind.IGNORED]), max_size=4)


# --- properties: delivery_outcome --------------------------------------------------------------


@PROPERTY
@given(data=st.data(), events=event_lists)
def test_outcome_is_the_same_in_every_arrival_order(data, events):
    arrived = data.draw(st.permutations(events))
    assert delivery_outcome(arrived) == delivery_outcome(events)


@PROPERTY
@given(data=st.data(), events=st.lists(any_event, min_size=1, max_size=10))
def test_duplicated_events_change_nothing(data, events):
    # A provider retrying a callback sends the same fact again, sometimes in another zone.
    repeats = data.draw(st.lists(st.sampled_from(events), min_size=1, max_size=5))
    repeats = [replace(event, occurred_at=event.occurred_at.astimezone(TOKYO)) for event in repeats]
    assert delivery_outcome(events + repeats) == delivery_outcome(events)


@PROPERTY
@given(events=event_lists, engagement=st.lists(facts(ENGAGEMENTS), min_size=1, max_size=5))
def test_engagement_never_changes_the_outcome(events, engagement):
    assert delivery_outcome(events + engagement) == delivery_outcome(events)


@PROPERTY
@given(events=not_ignored_event_lists, failures=st.lists(facts(PERMANENT_FAILURES), min_size=1))
def test_a_permanent_failure_anywhere_means_failed(events, failures):
    outcome = delivery_outcome(events + failures)

    permanent = [
        event
        for event in events + failures
        if event.kind == EventKind.FAILED and event.sub_kind != EventSubKind.DELIVERY_DELAY
    ]
    assert outcome.state == DeliveryState.FAILED
    assert outcome.failed_at == min(event.occurred_at for event in permanent)
    assert outcome.delivered_at is None


@PROPERTY
@given(events=event_lists, ignored=facts([p for p in VALID_PAIRS if p[0] == EventKind.IGNORED]))
def test_an_ignored_event_anywhere_means_ignored(events, ignored):
    outcome = delivery_outcome([*events, ignored])

    assert outcome.state == DeliveryState.IGNORED
    assert outcome.delivered_at is None
    assert outcome.failed_at is None


@PROPERTY
@given(events=event_lists)
def test_outcome_times_match_the_state_and_are_utc(events):
    outcome = delivery_outcome(events)

    assert (outcome.delivered_at is not None) == (outcome.state == DeliveryState.DELIVERED)
    assert (outcome.failed_at is not None) == (outcome.state == DeliveryState.FAILED)
    sent = [event.occurred_at for event in events if event.kind == EventKind.SENT]
    assert outcome.sent_at == (min(sent) if sent else None)
    for moment in (outcome.sent_at, outcome.delivered_at, outcome.failed_at):
        assert moment is None or moment.tzinfo is UTC


# --- properties: notification_status -----------------------------------------------------------


@PROPERTY
@given(data=st.data(), deliveries=channel_lists)
def test_notification_status_does_not_depend_on_delivery_order(data, deliveries):
    reordered = data.draw(st.permutations(deliveries))
    assert notification_status(reordered) == notification_status(deliveries)


@PROPERTY
@given(
    data=st.data(),
    deliveries=st.lists(channels, min_size=1, max_size=6),
    reports_delivery=st.booleans(),
)
def test_an_ignored_channel_never_changes_the_status_of_other_channels(
    data, deliveries, reports_delivery
):
    position = data.draw(st.integers(min_value=0, max_value=len(deliveries)))
    with_ignored = list(deliveries)
    with_ignored.insert(position, (DeliveryState.IGNORED, reports_delivery))

    assert notification_status(with_ignored) == notification_status(deliveries)


@pytest.mark.parametrize("reports_delivery", [True, False])
def test_an_ignored_only_channel_makes_a_received_notification_a_success(reports_delivery):
    assert notification_status([]) == NotificationStatus.RECEIVED
    assert (
        notification_status([(DeliveryState.IGNORED, reports_delivery)])
        == NotificationStatus.SUCCESS
    )


# --- properties: request-level outcomes -------------------------------------------------------


@PROPERTY
@given(deliveries=channel_lists, outcomes=request_outcome_lists)
def test_a_request_level_failed_means_failure_whatever_the_channels(deliveries, outcomes):
    outcomes = [*outcomes, EventKind.FAILED]
    assert notification_status(deliveries, request_outcomes=outcomes) == NotificationStatus.FAILURE


@PROPERTY
@given(
    deliveries=channel_lists,
    ignored=st.lists(st.just(EventKind.IGNORED), min_size=1, max_size=3),
    reports_delivery=st.booleans(),
)
def test_a_request_level_ignored_counts_as_one_more_ignored_channel(
    deliveries, ignored, reports_delivery
):
    as_channel = [*deliveries, (DeliveryState.IGNORED, reports_delivery)]
    assert notification_status(deliveries, request_outcomes=ignored) == notification_status(
        as_channel
    )


@PROPERTY
@given(outcomes=request_outcome_lists.filter(bool))
def test_a_request_level_outcome_without_channels_leaves_received(outcomes):
    expected = (
        NotificationStatus.FAILURE if EventKind.FAILED in outcomes else NotificationStatus.SUCCESS
    )
    assert notification_status([], request_outcomes=outcomes) == expected


@PROPERTY
@given(data=st.data(), deliveries=channel_lists, outcomes=request_outcome_lists)
def test_request_outcomes_count_as_a_set(data, deliveries, outcomes):
    reordered = data.draw(st.permutations(outcomes))
    repeated = data.draw(st.lists(st.sampled_from(outcomes), max_size=3)) if outcomes else []
    assert notification_status(
        deliveries, request_outcomes=[*reordered, *repeated]
    ) == notification_status(deliveries, request_outcomes=outcomes)


@PROPERTY
@given(deliveries=channel_lists)
def test_no_request_outcome_leaves_the_channels_to_decide(deliveries):
    assert notification_status(deliveries, request_outcomes=[]) == notification_status(deliveries)


# --- named cases: delivery_outcome -------------------------------------------------------------

K, S = EventKind, EventSubKind
RECEIVED, SENDING, SENT = DeliveryState.RECEIVED, DeliveryState.SENDING, DeliveryState.SENT
DELIVERED, FAILED, IGNORED = DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.IGNORED

OUTCOME_CASES = [
    pytest.param([], DeliveryOutcome(state=RECEIVED), id="no events is received"),
    pytest.param([ev(K.RECEIVED, 0)], DeliveryOutcome(state=RECEIVED), id="received is received"),
    pytest.param(
        [ev(K.RECEIVED, 0), ev(K.SENDING, 1)],
        DeliveryOutcome(state=SENDING),
        id="sending is sending",
    ),
    pytest.param(
        [ev(K.RECEIVED, 0), ev(K.SENDING, 1), ev(K.SENT, 2)],
        DeliveryOutcome(state=SENT, sent_at=at(2)),
        id="sent is sent",
    ),
    pytest.param(
        [ev(K.SENT, 2), ev(K.SENDING, 3)],
        DeliveryOutcome(state=SENT, sent_at=at(2)),
        id="a late sending after sent stays sent",
    ),
    pytest.param(
        [ev(K.SENT, 1, key="ringing"), ev(K.SENT, 2, key="in-progress")],
        DeliveryOutcome(state=SENT, sent_at=at(1)),
        id="call ringing then in progress keeps the earliest sent",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.DELIVERED, 4)],
        DeliveryOutcome(state=DELIVERED, sent_at=at(1), delivered_at=at(4)),
        id="email delivered is delivered",
    ),
    pytest.param(
        [ev(K.DELIVERED, 4), ev(K.SENT, 1)],
        DeliveryOutcome(state=DELIVERED, sent_at=at(1), delivered_at=at(4)),
        id="delivered arriving before sent is delivered",
    ),
    pytest.param(
        [ev(K.DELIVERED, 4)],
        DeliveryOutcome(state=DELIVERED, delivered_at=at(4)),
        id="delivered without sent has no sent time",
    ),
    pytest.param(
        [ev(K.DELIVERED, 4, key="a"), ev(K.DELIVERED, 6, key="b")],
        DeliveryOutcome(state=DELIVERED, delivered_at=at(4)),
        id="two delivered reports keep the earliest",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.DELIVERED, 4), ev(K.FAILED, 9, S.BOUNCE)],
        DeliveryOutcome(state=FAILED, sub_kind=S.BOUNCE, sent_at=at(1), failed_at=at(9)),
        id="bounce after delivery marks failure",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 3, S.BOUNCE), ev(K.DELIVERED, 4)],
        DeliveryOutcome(state=FAILED, sub_kind=S.BOUNCE, sent_at=at(1), failed_at=at(3)),
        id="bounce timestamped before delivery still marks failure",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 2, S.DELIVERY_DELAY), ev(K.DELIVERED, 8)],
        DeliveryOutcome(state=DELIVERED, sent_at=at(1), delivered_at=at(8)),
        id="delivery delay then delivered is delivered",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 5, S.DELIVERY_DELAY), ev(K.DELIVERED, 5)],
        DeliveryOutcome(state=DELIVERED, sent_at=at(1), delivered_at=at(5)),
        id="delivered at the same time as a delay replaces it",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.DELIVERED, 3), ev(K.FAILED, 6, S.DELIVERY_DELAY)],
        DeliveryOutcome(state=FAILED, sub_kind=S.DELIVERY_DELAY, sent_at=at(1), failed_at=at(6)),
        id="delivered then delivery delay later is failed",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 2, S.DELIVERY_DELAY)],
        DeliveryOutcome(state=FAILED, sub_kind=S.DELIVERY_DELAY, sent_at=at(1), failed_at=at(2)),
        id="delivery delay alone is failed",
    ),
    pytest.param(
        [
            ev(K.SENT, 1),
            ev(K.FAILED, 2, S.DELIVERY_DELAY, key="first"),
            ev(K.FAILED, 7, S.DELIVERY_DELAY, key="retry"),
        ],
        DeliveryOutcome(state=FAILED, sub_kind=S.DELIVERY_DELAY, sent_at=at(1), failed_at=at(7)),
        id="repeated delivery delays fail at the latest",
    ),
    pytest.param(
        [
            ev(K.FAILED, 1, S.DELIVERY_DELAY, key="first"),
            ev(K.DELIVERED, 2, key="early"),
            ev(K.FAILED, 3, S.DELIVERY_DELAY, key="second"),
            ev(K.DELIVERED, 4, key="late"),
        ],
        DeliveryOutcome(state=DELIVERED, delivered_at=at(4)),
        id="only a delivered after the latest delay counts",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 2, S.DELIVERY_DELAY), ev(K.FAILED, 5, S.BOUNCE)],
        DeliveryOutcome(state=FAILED, sub_kind=S.BOUNCE, sent_at=at(1), failed_at=at(5)),
        id="delay then bounce fails with the bounce",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 3, S.BOUNCE), ev(K.FAILED, 5, S.DELIVERY_DELAY)],
        DeliveryOutcome(state=FAILED, sub_kind=S.BOUNCE, sent_at=at(1), failed_at=at(3)),
        id="a delay after a bounce does not replace the bounce",
    ),
    pytest.param(
        [ev(K.FAILED, 0)],
        DeliveryOutcome(state=FAILED, failed_at=at(0)),
        id="failed without sub-kind is a permanent failure",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 4, S.INFRASTRUCTURE), ev(K.FAILED, 2, S.UNDELIVERED)],
        DeliveryOutcome(state=FAILED, sub_kind=S.UNDELIVERED, sent_at=at(1), failed_at=at(2)),
        id="the earliest permanent failure decides",
    ),
    pytest.param(
        [ev(K.FAILED, 2), ev(K.FAILED, 2, S.BOUNCE)],
        DeliveryOutcome(state=FAILED, sub_kind=S.BOUNCE, failed_at=at(2)),
        id="at equal times a failure that names its reason decides",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.DELIVERED, 3), ev(K.FAILED, 5, S.UNDELIVERED)],
        DeliveryOutcome(state=FAILED, sub_kind=S.UNDELIVERED, sent_at=at(1), failed_at=at(5)),
        id="sms undelivered is failed",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 2, S.INFRASTRUCTURE)],
        DeliveryOutcome(state=FAILED, sub_kind=S.INFRASTRUCTURE, sent_at=at(1), failed_at=at(2)),
        id="sms infrastructure failure is failed",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.DELIVERED, 2, S.COMPLETED)],
        DeliveryOutcome(state=DELIVERED, sub_kind=S.COMPLETED, sent_at=at(1), delivered_at=at(2)),
        id="call completed is delivered",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.DELIVERED, 2, S.BUSY)],
        DeliveryOutcome(state=DELIVERED, sub_kind=S.BUSY, sent_at=at(1), delivered_at=at(2)),
        id="call busy is delivered",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.DELIVERED, 3, S.NO_ANSWER)],
        DeliveryOutcome(state=DELIVERED, sub_kind=S.NO_ANSWER, sent_at=at(1), delivered_at=at(3)),
        id="call no answer is delivered",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 2, S.CANNOT_REACH)],
        DeliveryOutcome(state=FAILED, sub_kind=S.CANNOT_REACH, sent_at=at(1), failed_at=at(2)),
        id="call failed is cannot reach",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 2)],
        DeliveryOutcome(state=FAILED, sent_at=at(1), failed_at=at(2)),
        id="call canceled is failed without sub-kind",
    ),
    pytest.param(
        [ev(K.ENGAGEMENT, 3, S.OPENED)],
        DeliveryOutcome(state=RECEIVED),
        id="an engagement alone changes nothing",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.ENGAGEMENT, 2, S.OPENED), ev(K.ENGAGEMENT, 3, S.CLICKED)],
        DeliveryOutcome(state=SENT, sent_at=at(1)),
        id="opened before delivered is reported stays sent",
    ),
    pytest.param(
        [
            ev(K.SENT, 1),
            ev(K.DELIVERED, 2),
            ev(K.ENGAGEMENT, 5, S.COMPLAINED),
            ev(K.ENGAGEMENT, 6, S.UNSUBSCRIBED),
        ],
        DeliveryOutcome(state=DELIVERED, sent_at=at(1), delivered_at=at(2)),
        id="complaint and unsubscribe after delivery stay delivered",
    ),
    pytest.param(
        [ev(K.RECEIVED, 0), ev(K.IGNORED, 1, S.USER_PREFERENCE)],
        DeliveryOutcome(state=IGNORED, sub_kind=S.USER_PREFERENCE),
        id="user preference is ignored",
    ),
    pytest.param(
        [ev(K.IGNORED, 1, S.PLAN_LIMIT), ev(K.SENT, 2), ev(K.DELIVERED, 3)],
        DeliveryOutcome(state=IGNORED, sub_kind=S.PLAN_LIMIT, sent_at=at(2)),
        id="ignored wins over a send",
    ),
    pytest.param(
        [ev(K.IGNORED, 1, S.PLAN_LIMIT), ev(K.IGNORED, 4, S.DASHBOARD_PREFERENCE)],
        DeliveryOutcome(state=IGNORED, sub_kind=S.PLAN_LIMIT),
        id="the earliest ignored reason is given",
    ),
    pytest.param(
        [
            ev(K.IGNORED, 1, S.PLAN_LIMIT),
            ev(K.IGNORED, 1, S.USER_PREFERENCE),
            ev(K.IGNORED, 1, S.DASHBOARD_PREFERENCE),
        ],
        DeliveryOutcome(state=IGNORED, sub_kind=S.DASHBOARD_PREFERENCE),
        id="ignored reasons at the same time follow dispatch order",
    ),
    pytest.param(
        [ev(K.SENT, 1), ev(K.FAILED, 4, S.BOUNCE), ev(K.FAILED, 4, S.BOUNCE)],
        DeliveryOutcome(state=FAILED, sub_kind=S.BOUNCE, sent_at=at(1), failed_at=at(4)),
        id="a bounce reported twice counts once",
    ),
]


@pytest.mark.parametrize(("events", "expected"), OUTCOME_CASES)
def test_delivery_outcome(events, expected):
    assert delivery_outcome(events) == expected
    assert delivery_outcome(reversed(events)) == expected


def test_smtp_sent_stays_sent():
    # A provider that never reports delivery leaves the channel at sent; the notification
    # level decides that this is final (see "smtp sent counts as success").
    outcome = delivery_outcome([ev(K.SENDING, 0), ev(K.SENT, 1)], reports_delivery=False)

    assert outcome == DeliveryOutcome(state=SENT, sent_at=at(1))


def test_times_come_back_in_utc():
    sent_in_tokyo = EventFact(kind=K.SENT, occurred_at=at(1).astimezone(TOKYO))

    outcome = delivery_outcome([sent_in_tokyo])

    assert outcome.sent_at == at(1)
    assert outcome.sent_at.tzinfo is UTC


# --- named cases: notification_status ----------------------------------------------------------

STATUS_CASES = [
    pytest.param([], NotificationStatus.RECEIVED, id="no deliveries is received"),
    pytest.param([(RECEIVED, True)], NotificationStatus.RECEIVED, id="received is received"),
    pytest.param(
        [(SENT, True)], NotificationStatus.RECEIVED, id="sent but not delivered is received"
    ),
    pytest.param([(SENT, False)], NotificationStatus.SUCCESS, id="smtp sent counts as success"),
    pytest.param([(DELIVERED, True)], NotificationStatus.SUCCESS, id="delivered is success"),
    pytest.param(
        [(DELIVERED, False)],
        NotificationStatus.SUCCESS,
        id="delivered from a provider that does not report delivery is success",
    ),
    pytest.param(
        [(SENDING, False)],
        NotificationStatus.RECEIVED,
        id="smtp still sending is received",
    ),
    pytest.param(
        [(IGNORED, True), (IGNORED, False)],
        NotificationStatus.SUCCESS,
        id="all ignored is success",
    ),
    pytest.param(
        [(FAILED, True), (SENDING, True)],
        NotificationStatus.FAILURE,
        id="one failed one pending is failure",
    ),
    pytest.param(
        [(DELIVERED, True), (FAILED, True)],
        NotificationStatus.FAILURE,
        id="one delivered one failed is failure",
    ),
    pytest.param(
        [(DELIVERED, True), (SENT, False), (IGNORED, True)],
        NotificationStatus.SUCCESS,
        id="delivered, smtp sent and ignored is success",
    ),
    pytest.param(
        [(DELIVERED, True), (SENT, True)],
        NotificationStatus.RECEIVED,
        id="one delivered one awaiting delivery is received",
    ),
    pytest.param(
        [(IGNORED, True), (FAILED, False)],
        NotificationStatus.FAILURE,
        id="ignored and failed is failure",
    ),
    pytest.param(
        [(IGNORED, True), (RECEIVED, True)],
        NotificationStatus.RECEIVED,
        id="ignored and not yet sent is received",
    ),
]


REQUEST_CASES = [
    pytest.param([], [K.FAILED], NotificationStatus.FAILURE, id="bad parameters alone is failure"),
    pytest.param(
        [], [K.IGNORED], NotificationStatus.SUCCESS, id="plan limit before any channel is success"
    ),
    pytest.param(
        [(DELIVERED, True)],
        [K.FAILED],
        NotificationStatus.FAILURE,
        id="request failed wins over a delivered channel",
    ),
    pytest.param(
        [], [K.IGNORED, K.FAILED], NotificationStatus.FAILURE, id="request failed and ignored"
    ),
    pytest.param(
        [(SENT, True)],
        [K.IGNORED],
        NotificationStatus.RECEIVED,
        id="request ignored leaves a channel awaiting delivery to decide",
    ),
    pytest.param(
        [(FAILED, True)],
        [K.IGNORED],
        NotificationStatus.FAILURE,
        id="request ignored does not hide a failed channel",
    ),
    pytest.param(
        [(IGNORED, True), (DELIVERED, False)],
        [K.IGNORED],
        NotificationStatus.SUCCESS,
        id="request ignored, channel ignored, channel delivered is success",
    ),
]


@pytest.mark.parametrize(("deliveries", "outcomes", "expected"), REQUEST_CASES)
def test_notification_status_with_request_outcomes(deliveries, outcomes, expected):
    assert notification_status(deliveries, request_outcomes=outcomes) == expected


@pytest.mark.parametrize(("deliveries", "expected"), STATUS_CASES)
def test_notification_status(deliveries, expected):
    assert notification_status(deliveries) == expected


# --- bad input says how to fix it --------------------------------------------------------------


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="Unknown event kind 'bounced'"):
        EventFact(kind="bounced", occurred_at=at(0))


def test_sub_kind_of_another_kind_is_refused():
    with pytest.raises(ValueError, match="'bounce' does not belong to kind 'delivered'"):
        EventFact(kind=K.DELIVERED, sub_kind=S.BOUNCE, occurred_at=at(0))


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="naive"):
        EventFact(kind=K.SENT, occurred_at=datetime(2026, 3, 2, 9, 0))


def test_unknown_delivery_state_is_refused():
    with pytest.raises(ValueError, match="'bounced'"):
        notification_status([("bounced", True)])


@pytest.mark.parametrize("kind", ["received", "sent", "bounced"])
def test_a_request_outcome_other_than_failed_or_ignored_is_refused(kind):
    with pytest.raises(ValueError, match=f"{kind!r} is not a request-level outcome"):
        notification_status([], request_outcomes=[kind])


# --- a channel's own status (what "SMS + Failure" searches) ----------------------------------


@given(deliveries=channel_lists)
def test_a_notification_fails_exactly_when_one_channels_own_status_is_failure(deliveries):
    failed = any(
        delivery_status(*delivery) == NotificationStatus.FAILURE for delivery in deliveries
    )
    assert (notification_status(deliveries) == NotificationStatus.FAILURE) == failed


@given(deliveries=channel_lists.filter(bool))
def test_a_notification_succeeds_exactly_when_every_attempted_channel_succeeds(deliveries):
    own = [delivery_status(*delivery) for delivery in deliveries]
    succeeded = all(status in ("", NotificationStatus.SUCCESS) for status in own)
    assert (notification_status(deliveries) == NotificationStatus.SUCCESS) == succeeded


def test_each_delivery_state_has_one_status_and_ignored_has_none():
    pairs = [(state.value, reports) for state in DeliveryState for reports in (True, False)]
    found = {status: delivery_states_of_status(status) for status in NotificationStatus}
    assert sorted(p for states in found.values() for p in states) == sorted(
        p for p in pairs if p[0] != DeliveryState.IGNORED
    )
    assert found[NotificationStatus.FAILURE] == [("failed", True), ("failed", False)]
    assert ("sent", False) in found[NotificationStatus.SUCCESS]
    assert ("sent", True) in found[NotificationStatus.RECEIVED]
