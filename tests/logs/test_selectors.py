import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from logs.search_filters import Cursor, NotificationFilters
from logs.selectors import SEARCH_BUDGET_ROUNDS, notification_get, notification_page
from logs.services import event_record, notification_create
from tests.factories import EnvironmentFactory

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TYPES = ["order_tracking", "password_reset", "welcome"]
CHANNEL_OUTCOMES = {
    "email": [("delivered", ""), ("failed", "bounce"), ("sent", "")],
    "sms": [("delivered", ""), ("failed", "undelivered"), ("sent", "")],
    "call": [("delivered", "busy"), ("failed", "cannot_reach")],
}
# The status a channel has after each outcome (logs.status.delivery_status), written out here
# so the oracle does not call the code under test. Sent is final for email sent by SMTP
# (reports_delivery False), still on its way otherwise.
CHANNEL_STATUS = {"delivered": "success", "failed": "failure", "sent": "received"}


def _build(environment, count, rng, *, start=T0):
    """Notifications with a spread of users, emails, numbers, types, channels and outcomes;
    returns plain dicts of what each one is, for a brute-force answer to compare with."""
    facts = []
    for n in range(count):
        # Several notifications share a second, so ties on created_at are exercised.
        created_at = start + timedelta(seconds=n // 3)
        user = rng.randrange(8)
        notification = notification_create(
            environment_id=environment.id, notification_type=rng.choice(TYPES),
            user_id=f"usr_{user}", email=f"Person{user}.Name@Example.com",
            number=f"+1415555{user:04d}", created_at=created_at,
        )  # fmt: skip
        channels = rng.sample(sorted(CHANNEL_OUTCOMES), rng.randint(1, 2))
        deliveries = []
        for channel in channels:
            message_id = f"{channel}-{uuid.uuid4().hex[:12]}"
            smtp = channel == "email" and rng.random() < 0.5
            event_record(
                notification_id=notification.id, kind="sent", channel=channel, source="x",
                occurred_at=created_at,
                delivery_fields={"provider_message_id": message_id, "reports_delivery": not smtp},
            )  # fmt: skip
            kind, sub_kind = rng.choice(CHANNEL_OUTCOMES[channel])
            if kind != "sent":
                event_record(
                    notification_id=notification.id, kind=kind, sub_kind=sub_kind,
                    channel=channel, source="x", occurred_at=created_at + timedelta(seconds=2),
                )  # fmt: skip
            status = "success" if kind == "sent" and smtp else CHANNEL_STATUS[kind]
            deliveries.append(
                {"channel": channel, "message_id": message_id, "status": status,
                 "events": {("sent", ""), (kind, sub_kind)}}
            )  # fmt: skip
        notification.refresh_from_db()
        facts.append(
            {
                "n": notification, "user_id": notification.user_id,
                "email": notification.email.lower(), "number": notification.number,
                "type": notification.notification_type, "status": notification.status,
                "channels": set(channels), "deliveries": deliveries,
                "events": {e for d in deliveries for e in d["events"]} | {("received", "")},
                "message_ids": [d["message_id"] for d in deliveries],
            }
        )  # fmt: skip
    return facts


def _has_event(events, f: NotificationFilters) -> bool:
    # One event must be of the kind and the sub-kind asked for.
    return any(
        (not f.event_kind or kind == f.event_kind)
        and (not f.event_sub_kind or sub_kind == f.event_sub_kind)
        for kind, sub_kind in events
    )


def _delivery_matches(delivery, f: NotificationFilters) -> bool:
    """A channel or a message id names a delivery: the status and event filters are its."""
    return all(
        [
            not f.channels or delivery["channel"] in f.channels,
            not f.provider_message_id or delivery["message_id"] == f.provider_message_id,
            not f.statuses or delivery["status"] in f.statuses,
            _has_event(delivery["events"], f),
        ]
    )


def _matches(fact, f: NotificationFilters) -> bool:
    n = fact["n"]
    checks = [
        not f.tracking_ids or n.id in f.tracking_ids,
        not f.user_ids or fact["user_id"] in f.user_ids,
        not f.email or fact["email"] == f.email.lower(),
        not f.email_prefix or fact["email"].startswith(f.email_prefix.lower()),
        not f.number or fact["number"] == f.number,
        not f.notification_types or fact["type"] in f.notification_types,
        not f.created_from or n.created_at >= f.created_from,
        not f.created_to or n.created_at < f.created_to,
    ]
    if f.channels or f.provider_message_id:
        checks.append(any(_delivery_matches(d, f) for d in fact["deliveries"]))
    else:
        checks.append(not f.statuses or fact["status"] in f.statuses)
        checks.append(_has_event(fact["events"], f))
    return all(checks)


def _walk(environment, filters, limit):
    """Every page, following the cursor; the ids in the order they were served."""
    seen, cursor, pages = [], None, 0
    while True:
        page = notification_page(
            environment_id=environment.id, filters=filters, after=cursor, limit=limit
        )
        seen.extend(n.id for n in page.notifications)
        _assert_full_or_says_why(page, limit)
        pages += 1
        assert pages < 200, "pagination does not terminate"
        if page.next_cursor is None:
            return seen
        cursor = Cursor.decode(page.next_cursor.encode())


def _assert_full_or_says_why(page, limit):
    """A page is full unless the matches ran out, or it says it stopped early and how far
    back it looked (everything it holds is at least that recent)."""
    if page.next_cursor is None or len(page.notifications) == limit:
        return
    assert page.stopped_early, f"a short page ({len(page.notifications)}) with a next cursor"
    assert page.searched_back_to is not None
    assert all(n.created_at >= page.searched_back_to for n in page.notifications)
    assert page.next_cursor.created_at == page.searched_back_to


def _random_filters(rng, facts) -> NotificationFilters:
    pick = rng.choice(facts)
    options = {
        "tracking_ids": lambda: [pick["n"].id, rng.choice(facts)["n"].id],
        "user_ids": lambda: [pick["user_id"]],
        "email": lambda: pick["email"].upper(),
        "email_prefix": lambda: pick["email"][: rng.randint(3, 9)],
        "number": lambda: pick["number"][2:],  # without +1: still the same number
        "provider_message_id": lambda: rng.choice(pick["message_ids"]),
        "notification_types": lambda: rng.sample(TYPES, rng.randint(1, 2)),
        "statuses": lambda: [rng.choice(["success", "FAILURE", "received"])],
        "channels": lambda: rng.sample(sorted(CHANNEL_OUTCOMES), rng.randint(1, 2)),
        "event_kind": lambda: rng.choice(["sent", "failed", "delivered"]),
        "event_sub_kind": lambda: rng.choice(["bounce", "undelivered", "busy", "cannot_reach"]),
        "created_from": lambda: T0 + timedelta(seconds=rng.randint(0, 20)),
        "created_to": lambda: T0 + timedelta(seconds=rng.randint(21, 45)),
    }
    chosen = rng.sample(sorted(options), rng.randint(1, 3))
    return NotificationFilters(**{name: options[name]() for name in chosen})


@pytest.mark.django_db
def test_every_filter_combination_pages_through_exactly_the_matches_newest_first():
    rng = random.Random(7)
    environment, other = EnvironmentFactory(), EnvironmentFactory()
    facts = _build(environment, 120, rng)
    _build(other, 30, rng)  # another tenant's rows with the same users and emails
    ordered = sorted(facts, key=lambda f: (f["n"].created_at, f["n"].id), reverse=True)
    for _ in range(120):
        filters = _random_filters(rng, facts)
        expected = [f["n"].id for f in ordered if _matches(f, filters.normalized())]
        limit = rng.choice([1, 3, 7, 50])
        assert _walk(environment, filters, limit) == expected, filters


@pytest.mark.django_db
def test_a_channel_with_a_status_or_an_event_pages_through_that_channels_matches():
    """Channel, status, event and message id combined: each combination speaks of one
    delivery, through whichever index drives the search."""
    rng = random.Random(17)
    environment = EnvironmentFactory()
    facts = _build(environment, 120, rng)
    ordered = sorted(facts, key=lambda f: (f["n"].created_at, f["n"].id), reverse=True)
    for _ in range(80):
        pick = rng.choice(facts)
        options = {
            "statuses": [rng.choice(["success", "failure", "received"])],
            "event_kind": rng.choice(["sent", "failed", "delivered"]),
            "event_sub_kind": rng.choice(["bounce", "undelivered", "busy", "cannot_reach"]),
            "provider_message_id": rng.choice(pick["message_ids"]),
            "user_ids": [pick["user_id"]],
        }
        chosen = rng.sample(sorted(options), rng.randint(1, 2))
        filters = NotificationFilters(
            channels=rng.sample(sorted(CHANNEL_OUTCOMES), rng.randint(1, 2)),
            **{name: options[name] for name in chosen},
        )
        expected = [f["n"].id for f in ordered if _matches(f, filters.normalized())]
        assert _walk(environment, filters, rng.choice([1, 3, 50])) == expected, filters


@pytest.mark.django_db
def test_sms_with_failure_is_a_failed_sms_not_a_failed_email_beside_a_delivered_sms():
    environment = EnvironmentFactory()
    outcomes = {
        "email failed, sms delivered": {"email": ("failed", "bounce"), "sms": ("delivered", "")},
        "sms failed": {"sms": ("failed", "undelivered"), "email": ("delivered", "")},
        "sms ignored, email failed": {"sms": ("ignored", "user_preference"),
                                     "email": ("failed", "bounce")},
        "sms sent": {"sms": ("sent", "")},
    }  # fmt: skip
    made = {}
    for minutes, (name, channels) in enumerate(outcomes.items()):
        notification = notification_create(
            environment_id=environment.id, notification_type="welcome", user_id="usr_1",
            created_at=T0 + timedelta(minutes=minutes),
        )  # fmt: skip
        for channel, (kind, sub_kind) in channels.items():
            if kind != "ignored":
                event_record(notification_id=notification.id, kind="sent", channel=channel,
                             source="x", occurred_at=T0)  # fmt: skip
            if kind != "sent":
                event_record(notification_id=notification.id, kind=kind, sub_kind=sub_kind,
                             channel=channel, source="x", occurred_at=T0)  # fmt: skip
        made[name] = notification.id

    def found(**filters):
        page = notification_page(environment_id=environment.id, filters=NotificationFilters(
            **filters))  # fmt: skip
        return {name for name, id_ in made.items() if id_ in {n.id for n in page.notifications}}

    assert found(channels=["sms"], statuses=["failure"]) == {"sms failed"}
    assert found(channels=["sms"], statuses=["success"]) == {"email failed, sms delivered"}
    assert found(channels=["sms"], statuses=["received"]) == {"sms sent"}
    assert found(channels=["sms"], event_kind="failed") == {"sms failed"}
    assert found(channels=["email"], event_sub_kind="bounce", user_ids=["usr_1"]) == {
        "email failed, sms delivered", "sms ignored, email failed"}  # fmt: skip
    assert found(channels=["sms"], event_sub_kind="user_preference") == {
        "sms ignored, email failed"}  # fmt: skip
    # Without a channel the status is the whole notification's, and an event any of its own.
    assert found(statuses=["failure"]) == {
        "email failed, sms delivered", "sms failed", "sms ignored, email failed"}  # fmt: skip
    assert found(event_kind="delivered") == {"email failed, sms delivered", "sms failed"}


@pytest.mark.django_db
def test_another_tenants_notification_is_never_found():
    rng = random.Random(1)
    mine, theirs = EnvironmentFactory(), EnvironmentFactory()
    their_facts = _build(theirs, 5, rng)
    _build(mine, 5, rng)
    target = their_facts[0]
    for filters in [
        NotificationFilters(tracking_ids=[target["n"].id]),
        NotificationFilters(provider_message_id=target["message_ids"][0]),
        NotificationFilters(channels=sorted(target["channels"])),
        NotificationFilters(user_ids=[target["user_id"]]),
    ]:
        found = notification_page(environment_id=mine.id, filters=filters).notifications
        assert target["n"].id not in {n.id for n in found}
    from logs.models import Notification

    with pytest.raises(Notification.DoesNotExist):
        notification_get(environment_id=mine.id, tracking_id=target["n"].id)


@pytest.mark.django_db
def test_a_rare_match_behind_many_rejections_is_still_reached_through_pages():
    """The driving scan gives up after a few rounds with a cursor; following it must still
    reach the one match far down the list."""
    rng = random.Random(3)
    environment = EnvironmentFactory()
    _build(environment, 60, rng, start=T0 + timedelta(hours=1))
    rare = notification_create(
        environment_id=environment.id, notification_type="security_alert", user_id="usr_rare",
        created_at=T0,
    )  # fmt: skip
    event_record(notification_id=rare.id, kind="sent", channel="email", source="x")
    filters = NotificationFilters(channels=["email"], user_ids=["usr_rare"])
    assert _walk(environment, filters, limit=1) == [rare.id]


@pytest.mark.django_db
def test_a_rare_match_far_back_gives_pages_that_say_they_stopped_early():
    """A sub-kind search narrowed by user: the bounces of other users come first, more than
    one page may examine. The first page must not look like "no more results": it says it
    stopped early and how far back it looked, and its cursor goes on from there."""
    environment = EnvironmentFactory()
    rare = notification_create(
        environment_id=environment.id, notification_type="welcome", user_id="usr_rare",
        created_at=T0,
    )  # fmt: skip
    _bounce(rare)
    examined_per_page = SEARCH_BUDGET_ROUNDS * 4 * 2  # rounds x candidates per round (limit 1)
    for n in range(examined_per_page + 5):
        created_at = T0 + timedelta(minutes=1 + n)
        other = notification_create(
            environment_id=environment.id, notification_type="welcome", user_id=f"usr_{n}",
            created_at=created_at,
        )  # fmt: skip
        _bounce(other)
    filters = NotificationFilters(event_sub_kind="bounce", user_ids=["usr_rare"])
    first = notification_page(environment_id=environment.id, filters=filters, limit=1)
    assert first.notifications == []
    assert first.stopped_early
    newest = T0 + timedelta(minutes=examined_per_page + 5)
    assert first.searched_back_to == newest - timedelta(minutes=examined_per_page - 1)
    assert _walk(environment, filters, limit=1) == [rare.id]


def _bounce(notification):
    event_record(
        notification_id=notification.id, kind="failed", sub_kind="bounce", channel="email",
        source="x", occurred_at=notification.created_at,
    )  # fmt: skip


@pytest.mark.django_db
def test_two_channels_page_through_their_merged_index_ranges():
    """One notification on both channels is served once; ties on created_at keep their order."""
    rng = random.Random(11)
    environment = EnvironmentFactory()
    facts = _build(environment, 40, rng)
    ordered = sorted(facts, key=lambda f: (f["n"].created_at, f["n"].id), reverse=True)
    filters = NotificationFilters(channels=["sms", "call"])
    expected = [f["n"].id for f in ordered if f["channels"] & {"sms", "call"}]
    for limit in (1, 2, 5):
        assert _walk(environment, filters, limit) == expected


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (NotificationFilters(email_prefix="ab"), "at least 3 characters"),
        (NotificationFilters(number="12"), "wrong number of digits"),
        (NotificationFilters(number="call me"), "is not a phone number"),
        (NotificationFilters(tracking_ids=["nope"]), "is not a UUID"),
        (NotificationFilters(statuses=["done"]), "Unknown status 'done'"),
        (NotificationFilters(channels=["fax"]), "Unknown channel 'fax'"),
        (NotificationFilters(event_sub_kind="lost"), "Unknown event sub-kind"),
        (NotificationFilters(created_from=T0, created_to=T0), "date range is empty"),
    ],
)
def test_bad_filters_say_what_to_fix(filters, message):
    with pytest.raises(ValueError, match=message):
        filters.normalized()


def test_a_tampered_cursor_is_refused_with_advice():
    with pytest.raises(ValueError, match="pass back the nextToken"):
        Cursor.decode("not-a-cursor")
    cursor = Cursor(T0, uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.django_db
def test_page_size_is_bounded():
    with pytest.raises(ValueError, match="between 1 and 1000"):
        notification_page(environment_id=1, limit=0)


@pytest.mark.django_db
def test_a_sub_kind_with_another_kind_matches_nothing():
    rng = random.Random(5)
    environment = EnvironmentFactory()
    _build(environment, 10, rng)
    for extra in [{}, {"user_ids": ["usr_1"]}]:
        filters = NotificationFilters(event_kind="sent", event_sub_kind="bounce", **extra)
        page = notification_page(environment_id=environment.id, filters=filters)
        assert page.notifications == [] and page.next_cursor is None


@pytest.mark.django_db
def test_an_email_prefix_matches_exactly_the_addresses_that_start_with_it():
    # Characters LIKE would read as wildcards, non-ASCII letters, and the ends of the range
    # the prefix is searched as (the next string after it, a last character with no next).
    environment = EnvironmentFactory()
    emails = [
        "a_b@example.com", "axb@example.com", "a%b@example.com", "aab@example.com",
        "zoë@example.com", "zoe@example.com", "zoëy@example.com", "zof@example.com",
        "ab\U0010ffff@example.com", "ab\U0010ffffz@example.com", "ac@example.com",
        "a_c@example.com", "a_@example.com",
    ]  # fmt: skip
    for n, email in enumerate(emails):
        notification_create(
            environment_id=environment.id, notification_type="welcome", user_id=f"u{n}",
            email=email, created_at=T0 + timedelta(seconds=n),
        )  # fmt: skip

    for prefix in ["a_b", "a%b", "A_C", "zoë", "ZOE", "ab\U0010ffff", "ab\U0010ffffz", "ac@"]:
        page = notification_page(
            environment_id=environment.id, filters=NotificationFilters(email_prefix=prefix)
        )
        found = sorted(n.email for n in page.notifications)
        assert found == sorted(e for e in emails if e.startswith(prefix.lower())), prefix


@pytest.mark.parametrize(
    "filters",
    [
        NotificationFilters(),
        NotificationFilters(
            tracking_ids=[uuid.uuid4(), uuid.uuid4()],
            user_ids=["u1"],
            notification_types=["welcome", "order_tracking"],
            email="a@b.c",
            email_prefix="pers",
            number="+14155550100",
            provider_message_id="pm-1",
            statuses=["failure"],
            channels=["sms", "email"],
            event_kind="failed",
            event_sub_kind="bounce",
            created_from=T0,
            created_to=T0 + timedelta(days=1),
        ),
        NotificationFilters(email_prefix="zz\U0010ffff", created_to=T0),
    ],
)
@pytest.mark.parametrize("after", [None, Cursor(T0, uuid.uuid4())])
def test_a_search_is_its_shape_and_its_bound_values(filters, after):
    # What a cached statement is built from (one per shape) and bound with gives the search.
    from logs.search_shapes import _search_of, _search_shape

    filters = filters.normalized()
    shape, atoms = _search_shape(7, filters, after)
    assert _search_of(shape, atoms) == (7, filters, after)
    assert _search_of(shape, _search_shape(8, filters, after)[1])[0] == 8
