"""Generating the demo's rows as COPY text: no database here.

Each notification goes through the steps a real one does:

1. `_Generator._draft`: environment, type, user and merge tags are drawn; the request body is
   shaped like a NotificationAPI send.
2. The Received event: folded into the notification, as `logs.services.notification_create`
   folds it (no row; logs/timeline.py).
3. For each channel of the type: `_content` renders it for its provider; `_planned_events`
   says what happens to it (Ignored, or Sending and then what the provider reports, from
   `demo.outcomes`); `_event_rows` writes the events that happened by `end`, with the
   dedupe keys `logs.services.event_record` gives them, but for the pipeline's own, which
   it folds into the delivery's columns as event_record does (the first attempt's Sending,
   the pipeline's Sent, the in-app Delivered: logs/timeline.py re-derives them, with the
   dispatcher's detail texts); `StatusRules.delivery` derives the delivery's state and
   times with `logs.status.delivery_outcome`.
4. `StatusRules.notification` derives the status with `logs.status.notification_status`.

Every value is drawn from one seeded `random.Random`, so the same plan gives the same bytes
whether generated inline or in a forked process.
"""

import base64
import json
import random
import uuid
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from math import log

from django.conf import settings

from demo.catalogue import (
    DELIVERED,
    FAILED,
    IGNORED,
    MAX_CHANNELS,
    NULL,
    PROVIDER_LABELS,
    SENDING,
    SENT,
    TAGS,
    TYPES,
    EnvContext,
    NotificationKind,
    User,
    copy_text,
    created_times,
    environment_profile,
    template_dictionaries,
    templates_render,
    user_make,
)
from demo.outcomes import call_events, email_events, sms_events
from logs.content import content_packed
from logs.payloads import SOURCE_DICTIONARIES, payload_packed
from logs.status import EventFact, delivery_outcome, notification_status

# Upper bound of events per delivery, to reserve sequence ids (channels: see TYPES).
MAX_EVENTS_PER_DELIVERY = 8
SAMPLES_PER_ENVIRONMENT = 12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Plan:
    notifications: int
    seed: int
    start_ms: int
    end_ms: int
    environment_ids: list[int]
    delivery_base: int
    event_base: int
    chunk_size: int
    # (environment id, dictionary) -> its id (seed_dictionaries, written by the loader).
    dictionary_ids: dict[tuple[int, bytes], int] = field(default_factory=dict)


@dataclass
class Result:
    statuses: Counter
    outcomes: Counter
    samples: dict[int, dict[str, list[str]]]
    users: int


# (notifications, deliveries, events, notification rows, delivery rows, event rows)
Chunk = tuple[int, int, int, bytes, bytes, bytes]


def generate(plan: Plan) -> Iterator[Chunk | Result]:
    """Chunks of `plan.chunk_size` notifications as COPY text, then the Result."""
    generator = _Generator(plan)
    for chunk_start in range(0, plan.notifications, plan.chunk_size):
        yield generator.chunk(chunk_start, min(plan.notifications, chunk_start + plan.chunk_size))
    yield generator.result()


# --- the status rules, memoised ---------------------------------------------------------------


class StatusRules:
    """`logs.status` applied to the generated events, memoised by shape.

    `delivery_outcome` compares event times and never measures them, so its answer depends
    only on the kinds and sub-kinds of the events and the order of their times (ties
    included). A delivery's events are reduced to that shape (each time replaced by its
    rank), the rule is asked once per shape (a few hundred of them), and the ranks in its
    answer are mapped back to the delivery's own times. tests/logs/test_seed.py checks every
    seeded delivery against the rule itself.
    """

    def __init__(self) -> None:
        self._deliveries: dict[tuple, tuple] = {}
        self._notifications: dict[tuple, str] = {}

    def delivery(self, happened: list[tuple], reports_delivery: bool) -> tuple:
        """(state, sub-kind, sent ms, delivered ms, failed ms) of the events that happened;
        a time is None when the outcome has none."""
        # `happened` is in time order: ranks are counted in one pass.
        times: list[int] = []
        ranked = []
        for event in happened:
            if not times or event[0] != times[-1]:
                times.append(event[0])
            ranked.append((len(times) - 1, event[1], event[2]))
        shape = (reports_delivery, tuple(sorted(ranked)))
        answer = self._deliveries.get(shape)
        if answer is None:
            answer = self._deliveries[shape] = _outcome_by_rank(shape)
        state, sub_kind, *ranks = answer
        return (state, sub_kind, *(None if r is None else times[r] for r in ranks))

    def notification(self, channels: list[tuple[str, bool]]) -> str:
        key = tuple(channels)
        status = self._notifications.get(key)
        if status is None:
            status = self._notifications[key] = str(notification_status(channels))
        return status


def _outcome_by_rank(shape: tuple) -> tuple:
    reports_delivery, events = shape
    facts = [
        EventFact(kind=kind, sub_kind=sub_kind, occurred_at=_EPOCH + timedelta(seconds=rank))
        for rank, kind, sub_kind in events
    ]
    outcome = delivery_outcome(facts, reports_delivery=reports_delivery)

    def rank_of(moment: datetime | None) -> int | None:
        return None if moment is None else int((moment - _EPOCH).total_seconds())

    return (
        str(outcome.state),
        str(outcome.sub_kind),
        rank_of(outcome.sent_at),
        rank_of(outcome.delivered_at),
        rank_of(outcome.failed_at),
    )


# --- time as COPY text ------------------------------------------------------------------------


class _Clock:
    """Epoch milliseconds as COPY timestamps and ISO strings, cheaply: day strings and
    second-of-day strings are precomputed."""

    def __init__(self, start_ms: int, end_ms: int):
        self.first_day = start_ms // 86_400_000
        last_day = end_ms // 86_400_000 + 7  # planned events may fall after `end`
        self.days = [
            datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
            for day in range(self.first_day, last_day + 1)
        ]
        self.hms = [
            f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
        ]

        # Closures over locals: called for every row, so no attribute lookups.
        days, hms, first_day = self.days, self.hms, self.first_day

        def ts(t: int) -> str:
            seconds, millis = divmod(t, 1000)
            day, second = divmod(seconds, 86400)
            return f"{days[day - first_day]} {hms[second]}.{millis:03d}+00"

        def iso(t: int) -> str:
            seconds, millis = divmod(t, 1000)
            day, second = divmod(seconds, 86400)
            return f"{days[day - first_day]}T{hms[second]}.{millis:03d}Z"

        self.ts, self.iso = ts, iso


# --- one notification at a time --------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    """A notification being generated: what was asked, for whom, and what became of it."""

    nid: str
    created: int  # epoch ms
    created_ts: str
    env: EnvContext
    kind: NotificationKind
    user: User
    values: dict[str, str]  # merge tag -> value
    templates: dict[str, str]
    plan_limited: bool
    updated: int = 0
    sample_pmid: str = ""


@dataclass(slots=True)
class _Content:
    provider: str
    destination: str
    subject: str
    html: str
    text: str
    reports_delivery: bool


@dataclass
class _Rows:
    notifications: list[str]
    deliveries: list[str]
    events: list[str]


class _Generator:
    def __init__(self, plan: Plan):
        self.plan = plan
        # Made-up demo data, reproducible from the seed: not a secret.
        self.rng = random.Random(plan.seed)  # noqa: S311
        self.envs = _environments(plan, self.rng)
        # Bigger tenants first: environment weights E, E-1, ..., 1.
        self.env_cum = _cumulative(len(self.envs) - index for index in range(len(self.envs)))
        self.type_cum = _cumulative(kind.weight for kind in TYPES)
        self.times = created_times(self.rng, plan.start_ms, plan.end_ms, plan.notifications)
        self.clock = _Clock(plan.start_ms, plan.end_ms)
        self.rules = StatusRules()
        self.max_attempts = settings.SEND_MAX_ATTEMPTS
        self.envelope = json.dumps({"from": settings.DEFAULT_FROM_EMAIL})
        self.sender = copy_text(settings.DEFAULT_FROM_EMAIL)
        self.next_delivery = plan.delivery_base
        self.next_event = plan.event_base
        self.statuses: Counter = Counter()
        self.outcomes: Counter = Counter()
        self.samples = {env.environment_id: _empty_sample() for env in self.envs}
        self.sample_stride = max(
            1, plan.notifications // (SAMPLES_PER_ENVIRONMENT * len(self.envs) * 3)
        )

    def chunk(self, chunk_start: int, chunk_end: int) -> Chunk:
        rows = _Rows([], [], [])
        delivery_start, event_start = self.next_delivery, self.next_event
        for index in range(chunk_start, chunk_end):
            self._notification(rows, index)
        if self.next_event - self.plan.event_base > self.plan.notifications * (
            1 + MAX_CHANNELS * MAX_EVENTS_PER_DELIVERY
        ):
            raise RuntimeError("more events than ids reserved: raise MAX_EVENTS_PER_DELIVERY")
        return (
            chunk_end - chunk_start,
            self.next_delivery - delivery_start,
            self.next_event - event_start,
            "".join(rows.notifications).encode(),
            "".join(rows.deliveries).encode(),
            "".join(rows.events).encode(),
        )

    def result(self) -> Result:
        return Result(
            statuses=self.statuses,
            outcomes=self.outcomes,
            samples=self.samples,
            users=sum(len(env.users) for env in self.envs),
        )

    def _notification(self, rows: _Rows, index: int) -> None:
        draft = self._draft(index)
        merge_tags = draft.templates["merge_tags"] % draft.values
        request = (
            f'{{"notificationId": "{draft.kind.key}", "user": {draft.user.json}, '
            f'"mergeTags": {merge_tags}}}'
        )
        idempotency_key = ""
        if self.rng.random() < 0.2:
            idempotency_key = f"{draft.kind.key}-{self.rng.getrandbits(48):012x}"
        channels = [self._channel(rows, draft, channel) for channel in draft.kind.channels]
        status = self.rules.notification(channels)
        self.statuses[status] += 1
        user = draft.user
        # Its merge tags are the request's: not stored twice (logs.models.request_merge_tags).
        rows.notifications.append(
            f"{draft.nid}\t{draft.env.environment_id}\t{draft.kind.key}\t{user.user_id}\t"
            f"{user.email}\t{user.number}\t{user.timezone}\t"
            f"{NULL}\t{request}\t{status}\t"
            f"{draft.created_ts}\t{self.clock.ts(draft.updated)}\t{idempotency_key}\t{NULL}\n"
        )
        if index % self.sample_stride == 0:
            _sample(self.samples[draft.env.environment_id], draft)

    def _draft(self, index: int) -> _Draft:
        rand = self.rng.random
        created = self.times[index]
        env = self.envs[bisect_right(self.env_cum, rand() * self.env_cum[-1])]
        kind = TYPES[bisect_right(self.type_cum, rand() * self.type_cum[-1])]
        # A few heavy users, many light ones.
        user = env.users[int(len(env.users) * rand() ** 1.6)]
        nid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        values = {"firstName": user.first_name}
        for tag in kind.tags:
            values[tag] = TAGS[tag](self.rng)
        return _Draft(
            nid=nid,
            created=created,
            created_ts=self.clock.ts(created),
            env=env,
            kind=kind,
            user=user,
            values=values,
            templates=env.templates[kind.key],
            plan_limited=rand() < 0.002,
            updated=created,
        )

    def _channel(self, rows: _Rows, draft: _Draft, channel: str) -> tuple[str, bool]:
        """Write one channel's events and delivery; return (state, reports delivery)."""
        delivery_id = self.next_delivery
        self.next_delivery += 1
        content = _content(channel, draft)
        events, pmid = self._planned_events(channel, draft, content)
        # Planned events are in time order; those after `end` have not happened yet.
        end_ms = self.plan.end_ms
        happened = events if events[-1][0] <= end_ms else [e for e in events if e[0] <= end_ms]
        d_updated, folded = self._event_rows(rows, draft, delivery_id, channel, happened)
        state, detail, sent_at, delivered_at, failed_at = self.rules.delivery(
            happened, content.reports_delivery
        )
        error_code, error_message = _error(happened, failed_at, detail)
        draft.updated = max(draft.updated, d_updated)
        self.outcomes[f"{channel} {state} {detail}".rstrip()] += 1
        if pmid and not draft.sample_pmid:
            draft.sample_pmid = pmid
        ts = self.clock.ts
        stored = self._stored(draft, channel, content)
        # The notification's own address for the channel: not stored twice (dispatch leaves
        # it blank; logs.models.Delivery.destination_of reads it from the notification).
        destination = "" if content.provider else content.destination
        rows.deliveries.append(
            f"{delivery_id}\t{draft.nid}\t{draft.created_ts}\t{draft.env.environment_id}\t"
            f"{channel}\t{state}\t{detail}\t{content.provider}\t{pmid}\t"
            f"{'t' if content.reports_delivery else 'f'}\t{destination}\t"
            f"{copy_text(content.subject)}\t{stored}\t{error_code}\t{error_message}\t"
            f"{_ts_or_null(ts, sent_at)}\t{_ts_or_null(ts, delivered_at)}\t"
            f"{_ts_or_null(ts, failed_at)}\t{ts(d_updated)}\t{folded}\n"
        )
        return state, content.reports_delivery

    def _stored(self, draft: _Draft, channel: str, content: _Content) -> str:
        """The html, text, content_packed and content_dictionary_id columns (COPY text): the
        content compressed with its template as dispatch stores it (logs.content), or plain
        when that is not smaller."""
        dictionary = draft.env.dictionaries[draft.kind.key][channel]
        # A plan without the ids (the generator alone, tests) stores the content plain.
        dictionary_id = self.plan.dictionary_ids.get((draft.env.environment_id, dictionary))
        packed = dictionary_id and content_packed(
            html=content.html, text=content.text, dictionary=dictionary
        )
        if not packed:
            return f"{copy_text(content.html)}\t{copy_text(content.text)}\t{NULL}\t{NULL}"
        # bytea in hex, its backslash doubled for COPY.
        return f"\t\t\\\\x{packed.hex()}\t{dictionary_id}"

    def _planned_events(self, channel: str, draft: _Draft, content: _Content):
        """(events in time order, provider message id). Each event is (time ms, kind,
        sub-kind, source, provider event id, detail, payload, error code, error message);
        some fall after `end` and are left out by the caller."""
        rng = self.rng
        rand = rng.random
        t = draft.created + 15 + int(rand() * rand() * 1200)
        if ignored := _ignored(channel, draft, rand()):
            return [(t, IGNORED, *ignored)], ""
        label = PROVIDER_LABELS[content.provider]
        destination = content.destination
        # As notifications.sending writes a first attempt: its number and provider, and for
        # an email the envelope (the seed's requests name no sender, so the default one).
        sending = f"Attempt 1 of {self.max_attempts} via {content.provider}."
        envelope = self.envelope if channel == "email" else NULL
        events = [(t, SENDING, "", "pipeline", "", sending, envelope, "", "")]
        t_sent = t + 60 + int(rand() * 700)
        # Callbacks: usually seconds; now and then (provider backlog) much later.
        late = int(-1_800_000 * log(rand() or 1e-12)) if rand() < 0.004 else 0
        r = rand()
        provider = content.provider
        if channel == "email":
            return email_events(
                events, rng, provider, label, destination, t_sent, late, r, self.clock.iso,
                base64.urlsafe_b64encode,
            )  # fmt: skip
        if channel == "sms":
            return sms_events(events, rng, provider, label, destination, draft.env, t_sent, late, r)
        if channel == "call":
            return call_events(
                events, rng, provider, label, destination, draft.env, t_sent, late, r
            )
        stored = "Stored in the in-app inbox"
        events.append((t_sent, SENT, "", "pipeline", "", stored, NULL, "", ""))
        events.append(
            (t_sent + 200 + int(rand() * 5000), DELIVERED, "", "pipeline", "",
             "Delivered to the user's inbox (websocket)", NULL, "", "")
        )  # fmt: skip
        return events, ""

    def _event_rows(
        self, rows, draft: _Draft, delivery_id: int, channel: str, happened
    ) -> tuple[int, str]:
        """Write the events that happened but the pipeline's own; return when the last of
        them was recorded, and the delivery's columns that those are folded into (COPY
        text: sending_at, accepted_at, sender, send_max_attempts)."""
        end_ms = self.plan.end_ms
        rand = self.rng.random
        ts = self.clock.ts
        append = rows.events.append
        prefix = f"{draft.nid}\t{draft.created_ts}\t{delivery_id}\t{draft.env.environment_id}"
        event_id = self.next_event
        last_recorded = draft.created
        sending_at = accepted_at = sender = max_attempts = NULL
        for occurred, kind, sub_kind, source, provider_event_id, detail, payload, _, _ in happened:
            if source == "pipeline" and kind in (SENDING, SENT, DELIVERED):
                # Folded (the seed's sends succeed or fail at the first attempt, with the
                # default sender alone in the envelope): no row.
                last_recorded = max(last_recorded, occurred)
                if kind == SENDING:
                    sending_at, max_attempts = ts(occurred), self.max_attempts
                    sender = self.sender if channel == "email" else NULL
                elif kind == SENT:
                    accepted_at = ts(occurred)
                continue
            if source == "pipeline":
                recorded = occurred
                # The key the send pipeline gives its own events (notifications.sending:
                # "sending:<channel>:<attempt>", "sent:<channel>", "failed:<channel>",
                # "ignored:<channel>"; the in-app provider's "in_app:delivered").
                dedupe_key = _pipeline_key(kind, channel)
            else:
                recorded = min(occurred + 150 + int(rand() * 2500), end_ms)
                # event_record's key for a provider event: "<source>:<provider event id>",
                # the id's only copy (the provider_event_id column is left empty).
                dedupe_key = f"{source}:{provider_event_id}"
            if recorded > last_recorded:
                last_recorded = recorded
            append(
                f"{event_id}\t{prefix}\t{kind}\t{sub_kind}\t{channel}\t{ts(occurred)}\t"
                f"{ts(recorded)}\t{source}\t\t{dedupe_key}\t{detail}\t"
                f"{_payload_columns(source, payload)}\n"
            )
            event_id += 1
        self.next_event = event_id
        return last_recorded, f"{sending_at}\t{accepted_at}\t{sender}\t{max_attempts}"


# --- small steps --------------------------------------------------------------------------------


def _payload_columns(source: str, payload: str) -> str:
    """The payload and payload_packed columns (COPY text) of an event whose payload is
    `payload` (JSON text, or NULL): packed with its source's dictionary as event_record
    stores it (logs.payloads), or plain when it has none or that is not smaller."""
    packed = None
    if payload != NULL and source in SOURCE_DICTIONARIES:
        packed = payload_packed(source=source, payload=json.loads(payload))
    if packed is None:
        return f"{payload}\t{NULL}"
    # bytea in hex, its backslash doubled for COPY.
    return f"{NULL}\t\\\\x{packed.hex()}"


def _environments(plan: Plan, rng: random.Random) -> list[EnvContext]:
    """Brand, providers, users and rendered templates of each environment, in rotation."""
    env_count = len(plan.environment_ids)
    total_users = max(env_count, plan.notifications // 20)
    envs = []
    for index, env_id in enumerate(plan.environment_ids):
        brand, domain, email_provider, phone_provider = environment_profile(index)
        pool = max(1, total_users // env_count)
        templates = {kind.key: templates_render(kind, brand, domain) for kind in TYPES}
        envs.append(
            EnvContext(
                environment_id=env_id,
                brand=brand,
                domain=domain,
                email_provider=email_provider,
                phone_provider=phone_provider,
                account_sid=f"AC{rng.getrandbits(128):032x}",
                from_number=f"+1415555{rng.randrange(100, 200):04d}",
                users=[user_make(rng) for _ in range(pool)],
                templates=templates,
                dictionaries={
                    kind.key: template_dictionaries(templates[kind.key], kind.channels)
                    for kind in TYPES
                },
            )
        )
    return envs


def seed_dictionaries(index: int) -> list[bytes]:
    """The content dictionaries of the `index`th seeded environment (the loader writes them
    first and gives the generator their ids: Plan.dictionary_ids)."""
    brand, domain, _, _ = environment_profile(index)
    return [
        dictionary
        for kind in TYPES
        for dictionary in template_dictionaries(
            templates_render(kind, brand, domain), kind.channels
        ).values()
    ]


def _cumulative(weights) -> list[int]:
    total, cumulative = 0, []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative


def _content(channel: str, draft: _Draft) -> _Content:
    """The channel's provider, address and content, rendered with the merge tags."""
    env, user, templates, values = draft.env, draft.user, draft.templates, draft.values
    if channel == "email":
        return _Content(
            provider=env.email_provider,
            destination=user.email,
            subject=templates["subject"] % values,
            html=templates["html"] % values,
            # The templates are HTML only: the text part is derived as dispatch derives it.
            text=templates["text"] % values,
            # WORKAROUND: plain SMTP never reports delivery; Sent is its last word.
            reports_delivery=env.email_provider != "smtp",
        )
    if channel in ("sms", "call"):
        return _Content(env.phone_provider, user.number, "", "", templates[channel] % values, True)
    return _Content("in_app", user.user_id, "", "", templates["in_app"] % values, True)


def _ignored(channel: str, draft: _Draft, r: float) -> tuple | None:
    """The rest of an Ignored event (sub-kind ... error message) when the channel is not
    sent: the plan limit, the user's preference or the dashboard's."""
    kind = draft.kind
    shown = channel.replace("_", "-")
    if draft.plan_limited:
        reason = (
            "plan_limit",
            "Monthly plan limit reached (notifications over the plan's quota are not sent)",
        )
    elif r < kind.opt_out:
        reason = "user_preference", f"The user turned off {shown} for {kind.key}"
    elif r < kind.opt_out + 0.001:
        reason = (
            "dashboard_preference",
            f"{shown.capitalize()} is turned off for {kind.key} in the dashboard",
        )
    else:
        return None
    return (reason[0], "pipeline", "", reason[1], NULL, "", "")


def _error(happened: list[tuple], failed_at: int | None, sub_kind: str) -> tuple[str, str]:
    """The error code and message of the failure that decided a failed state."""
    if failed_at is None:
        return "", ""
    for occurred, kind, event_sub_kind, *_, code, message in happened:
        if occurred == failed_at and kind == FAILED and event_sub_kind == sub_kind:
            return code, message
    return "", ""


def _pipeline_key(kind: str, channel: str) -> str:
    if kind == SENDING:
        return f"sending:{channel}:1"  # the seed's sends succeed (or fail) at the first attempt
    if kind == DELIVERED:
        return "in_app:delivered"  # notifications.providers.in_app.DELIVERED_KEY
    return f"{kind}:{channel}"


def _ts_or_null(ts, moment: int | None) -> str:
    return NULL if moment is None else ts(moment)


def _empty_sample() -> dict[str, list[str]]:
    keys = ("tracking_ids", "user_ids", "emails", "numbers", "provider_message_ids",
            "notification_types")  # fmt: skip
    return {key: [] for key in keys}


def _sample(bucket: dict[str, list[str]], draft: _Draft) -> None:
    """Keep a few real values of the environment, for benchmarks and the command to show."""
    if len(bucket["tracking_ids"]) >= SAMPLES_PER_ENVIRONMENT:
        return
    bucket["tracking_ids"].append(draft.nid)
    bucket["user_ids"].append(draft.user.user_id)
    bucket["emails"].append(draft.user.email)
    bucket["numbers"].append(draft.user.number)
    bucket["notification_types"].append(draft.kind.key)
    if draft.sample_pmid:
        bucket["provider_message_ids"].append(draft.sample_pmid)
