"""The data generator: realistic notification logs, a million at a time, in minutes.

`seed_logs()` fills the log tables with `notifications` notifications spread over the last
`days` days (up to `end`, default now) across `environments` seed environments, with their
deliveries and timelines, as the send pipeline and the providers' callbacks would have left
them:

- a catalogue of notification types, each with its usual channels (email; email + SMS; SMS;
  call; in-app + email; in-app), merge tags and a request body shaped like a NotificationAPI
  send (`{"notificationId", "user": {...}, "mergeTags": {...}}`);
- a pool of about `notifications / 20` users (a few heavy ones, many light ones) with user ids
  like `usr_8f3a…`, emails like `maria.garcia42@example.com` (some with capitals) and E.164
  numbers from several countries;
- outcomes per channel in the event vocabulary of DESIGN.md: email mostly Sent → Delivered,
  ~3% Failed - Bounce (some after a Delivered), ~2% Failed - Delivery Delay (most later
  Delivered), ~5% opened or clicked, ~0.2% Complained; SMS mostly Delivered, ~2% Undelivered
  (Twilio 30003/30005/30006), ~1% Infrastructure (30008); calls Completed / Busy / No Answer /
  Cannot Reach; a few channels Ignored (user preference, dashboard, plan limit); a few still
  in flight (recent ones whose callbacks have not come yet, the odd one never reported);
- each environment on its own providers: Amazon SES + Twilio, the sandbox, SendGrid + Twilio,
  plain SMTP (which never reports delivery) + Twilio, in that rotation;
- delivery state, times and notification status exactly as `logs.status` derives them from
  the events written.

Speed: rows are produced as pre-formatted COPY text by a forked generator process and
streamed into PostgreSQL (`COPY … FROM STDIN` into the partitioned parents), one transaction
per chunk of notifications with their deliveries and events, by two connections at once, so
generation and ingestion overlap on two cores (about 90 s for a million notifications, 7.3M
rows, on the 2-core development machine). Inside a transaction (tests) the same chunks go
through Django's connection instead. Ids come from the tables' sequences, reserved in one block
up front (the unused tail is given back if nobody else drew from the sequence meanwhile). Day
partitions are created first so nothing lands in DEFAULT; loading sessions skip the WAL flush
at commit and, for a superuser, the per-row foreign key triggers; the tables are vacuumed and
analysed at the end.

Deterministic: the same arguments (seed, counts, end and the environments' ids) give the same
rows, whether generated inline or in the forked process.
"""

from __future__ import annotations

import base64
import contextlib
import multiprocessing
import queue
import random
import threading
import time
import traceback
import uuid
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from math import log

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account, Environment
from accounts.services import environment_create
from logs.partitions import partitions_ensure
from logs.vocabulary import EventKind, NotificationStatus

NOTIFICATION_COLUMNS = (
    "id, environment_id, notification_type, user_id, email, number, timezone, merge_tags, "
    "request, status, created_at, updated_at, idempotency_key, scheduled_for"
)
DELIVERY_COLUMNS = (
    "id, notification_id, notification_created_at, environment_id, channel, state, "
    "state_detail, provider, provider_message_id, reports_delivery, destination, subject, "
    "html, text, error_code, error_message, sent_at, delivered_at, failed_at, updated_at"
)
EVENT_COLUMNS = (
    "id, notification_id, notification_created_at, delivery_id, environment_id, kind, "
    "sub_kind, channel, occurred_at, recorded_at, source, provider_event_id, dedupe_key, "
    "detail, payload"
)
SEED_ACCOUNT_PREFIX = "Seed account"
SEED_ENVIRONMENT_NAME = "production"
CHUNK_SIZE = 10_000  # notifications per COPY transaction
WRITERS = 2  # connections copying at once, outside a transaction
PARALLEL_THRESHOLD = 20_000  # below this, generate inline (forking costs more than it saves)
SAMPLES_PER_ENVIRONMENT = 12
# Upper bound of events per delivery, to reserve sequence ids (channels: see TYPES).
_MAX_EVENTS_PER_DELIVERY = 8


# --- the result -------------------------------------------------------------------------------


@dataclass
class EnvironmentSample:
    """Real values of one seeded environment, for benchmarks to search for."""

    environment_id: int
    name: str
    tracking_ids: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    provider_message_ids: list[str] = field(default_factory=list)
    notification_types: list[str] = field(default_factory=list)


@dataclass
class SeedSummary:
    notifications: int
    deliveries: int
    events: int
    environment_ids: list[int]
    environment_names: list[str]
    start: datetime  # created_at of the seeded notifications is in [start, end)
    end: datetime
    seconds: float  # wall time of the whole seed, ANALYZE included
    samples: dict[int, EnvironmentSample]  # by environment id
    statuses: dict[str, int]  # notification status -> count
    # "email delivered", "email failed bounce", "call delivered busy", "sms ignored
    # user_preference" ... -> deliveries
    outcomes: dict[str, int]
    users: int  # size of the user pool (all environments)

    @property
    def rows(self) -> int:
        return self.notifications + self.deliveries + self.events

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# --- the public entry point -------------------------------------------------------------------


def seed_logs(
    *,
    notifications: int,
    days: int,
    environments: int,
    seed: int = 0,
    end: datetime | None = None,
    chunk_size: int = CHUNK_SIZE,
    parallel: bool | None = None,
    writers: int = WRITERS,
    analyze: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> SeedSummary:
    """Write `notifications` notifications (with deliveries and events) created over the
    `days` days before `end` into `environments` seed environments ("Seed account N /
    production", created or reused).

    `parallel` generates rows in a forked process while this one copies (default: when
    `notifications` ≥ PARALLEL_THRESHOLD and fork is available). Inside a transaction (tests)
    everything goes through Django's connection in that transaction; otherwise `writers`
    connections of their own copy chunks concurrently, each chunk (notifications with their
    deliveries and events) committed on its own. `progress(done, total)` is called after
    every chunk. `analyze` gathers planner statistics at the end (VACUUM (ANALYZE) outside a
    transaction, ANALYZE inside one).
    """
    if notifications < 0 or days < 1 or environments < 1:
        raise ValueError("notifications must be ≥ 0, days and environments ≥ 1.")
    started = time.perf_counter()
    end = (end or timezone.now()).astimezone(UTC)
    end = end.replace(microsecond=end.microsecond // 1000 * 1000)
    start = end - timedelta(days=days)
    envs = seed_environments(environments)
    _ensure_day_partitions(start, end)

    event_reservation = notifications * (1 + _MAX_CHANNELS * _MAX_EVENTS_PER_DELIVERY)
    delivery_reservation = notifications * _MAX_CHANNELS
    with connection.cursor() as cursor:
        delivery_base = _reserve_ids(cursor, "logs_delivery_id_seq", delivery_reservation)
        event_base = _reserve_ids(cursor, "logs_event_id_seq", event_reservation)
    plan = _Plan(
        notifications=notifications,
        seed=seed,
        start_ms=_ms(start),
        end_ms=_ms(end),
        environment_ids=[env.id for env in envs],
        delivery_base=delivery_base,
        event_base=event_base,
        chunk_size=max(1, chunk_size),
    )
    if parallel is None:
        parallel = notifications >= PARALLEL_THRESHOLD
    parallel = parallel and "fork" in multiprocessing.get_all_start_methods()
    chunks = _ForkedChunks(plan) if parallel else _generate(plan)
    tables = ("logs_event", "logs_notification", "logs_delivery") if analyze else ()
    counter = _Counter(total=notifications, progress=progress)
    try:
        if connection.in_atomic_block or writers <= 1:
            result = _load_serial(chunks, counter, tables)
        else:
            result = _load_parallel(chunks, counter, tables, writers)
    finally:
        chunks.close()
    with connection.cursor() as cursor:
        _release_ids(
            cursor, "logs_delivery_id_seq", delivery_base, counter.deliveries, delivery_reservation
        )
        _release_ids(cursor, "logs_event_id_seq", event_base, counter.events, event_reservation)

    samples = {}
    for env in envs:
        values = result.samples.get(env.id, {})
        samples[env.id] = EnvironmentSample(environment_id=env.id, name=str(env), **values)
    return SeedSummary(
        notifications=counter.notifications,
        deliveries=counter.deliveries,
        events=counter.events,
        environment_ids=[env.id for env in envs],
        environment_names=[str(env) for env in envs],
        start=start,
        end=end,
        seconds=time.perf_counter() - started,
        samples=samples,
        statuses=dict(result.statuses),
        outcomes=dict(result.outcomes),
        users=result.users,
    )


def seed_environments(count: int) -> list[Environment]:
    """ "Seed account 1 / production" … "Seed account N / production", created if missing."""
    envs = []
    for n in range(1, count + 1):
        account, _ = Account.objects.get_or_create(name=f"{SEED_ACCOUNT_PREFIX} {n}")
        env = Environment.objects.filter(account=account, name=SEED_ENVIRONMENT_NAME).first()
        if env is None:
            env = environment_create(account=account, name=SEED_ENVIRONMENT_NAME).obj
        env.account = account
        envs.append(env)
    return envs


# --- database side ----------------------------------------------------------------------------


def _ensure_day_partitions(start: datetime, end: datetime) -> None:
    today = timezone.now().astimezone(UTC).date()
    ahead = max(settings.LOG_PARTITIONS_AHEAD, (end.date() - today).days)
    partitions_ensure(days_ahead=ahead, start=start.date())


@dataclass
class _Counter:
    total: int
    progress: Callable[[int, int], None] | None
    notifications: int = 0
    deliveries: int = 0
    events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, notifications: int, deliveries: int, events: int) -> None:
        with self.lock:
            self.notifications += notifications
            self.deliveries += deliveries
            self.events += events
            if self.progress:
                self.progress(self.notifications, self.total)


def _session_setup(cursor) -> list[str]:
    """Make this session cheap to bulk-load with; return the settings to reset after.

    Commits need not wait for the WAL flush. And, for a superuser, the per-row foreign key
    checks (environment_id) are skipped, as pg_dump --disable-triggers does: the rows
    reference environments fetched a moment ago, so the checks cannot fail, and they would
    cost about half the load time (one deferred trigger per row). Anyone else gets them.
    """
    cursor.execute("SET synchronous_commit = off")
    changed = ["synchronous_commit"]
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if cursor.fetchone()[0]:
        cursor.execute("SET session_replication_role = replica")
        changed.append("session_replication_role")
    return changed


def _session_reset(cursor, changed: list[str]) -> None:
    for name in changed:
        cursor.execute(f"RESET {name}")


def _load_chunk(cursor, chunk: Chunk) -> None:
    _, _, _, notification_rows, delivery_rows, event_rows = chunk
    _copy(cursor, "logs_notification", NOTIFICATION_COLUMNS, notification_rows)
    _copy(cursor, "logs_delivery", DELIVERY_COLUMNS, delivery_rows)
    _copy(cursor, "logs_event", EVENT_COLUMNS, event_rows)


def _load_serial(chunks: Iterable, counter: _Counter, analyze: tuple[str, ...]) -> _Result:
    """Everything through Django's connection (and the caller's transaction, if any)."""
    result = None
    with connection.cursor() as cursor:
        changed = _session_setup(cursor)
        try:
            for item in chunks:
                if isinstance(item, _Result):
                    result = item
                    continue
                with transaction.atomic():
                    _load_chunk(cursor, item)
                counter.add(*item[:3])
            for table in analyze:
                cursor.execute(f"ANALYZE {table}")
        finally:
            _session_reset(cursor, changed)
    assert result is not None, "the generator ended without its result"
    return result


def _load_parallel(
    chunks: Iterable, counter: _Counter, analyze: tuple[str, ...], writers: int
) -> _Result:
    """Chunks copied by `writers` threads, each on a connection of its own (COPY waits on
    the socket with the GIL released, so the threads overlap in PostgreSQL).

    At the end the tables are vacuumed and analysed, shared between the writers: a few
    seconds, and the benchmarks then see the visibility map and hint bits set as on a live
    database (index-only scans, no hint-bit writes on the first reads), not a fresh load."""
    work: queue.Queue = queue.Queue(maxsize=1)
    errors: list[BaseException] = []
    params = connection.get_connection_params()

    def writer() -> None:
        conn = None
        try:
            conn = psycopg.connect(**params, autocommit=True)
            cursor = conn.cursor()
            _session_setup(cursor)
        except BaseException as exc:
            errors.append(exc)
        # Take every item until the sentinel, so the feeder never blocks on a dead writer;
        # once anything failed, the rest is dropped.
        while (item := work.get()) is not None:
            try:
                if conn is not None and not errors:
                    if isinstance(item, str):
                        cursor.execute(item)
                    else:
                        with conn.transaction():
                            _load_chunk(cursor, item)
                        counter.add(*item[:3])
            except BaseException as exc:
                errors.append(exc)
            finally:
                work.task_done()
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(writers)]
    for thread in threads:
        thread.start()
    result = None
    try:
        for item in chunks:
            if errors:
                break
            if isinstance(item, _Result):
                result = item
            else:
                work.put(item)
        if not errors:
            work.join()  # every chunk committed before the statistics are gathered
            for table in analyze:
                work.put(f"VACUUM (ANALYZE) {table}")
    finally:
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    assert result is not None, "the generator ended without its result"
    return result


def _reserve_ids(cursor, sequence: str, count: int) -> int:
    """Jump the sequence past `count` ids and return the first one reserved."""
    if count == 0:
        return 1
    cursor.execute(
        "WITH first AS (SELECT nextval(%s) AS id) SELECT id, setval(%s, id + %s - 1) FROM first",
        [sequence, sequence, count],
    )
    return cursor.fetchone()[0]


def _release_ids(cursor, sequence: str, first: int, used: int, reserved: int) -> None:
    """Give back the unused tail of a reservation, unless someone drew ids since."""
    if reserved == 0:
        return
    cursor.execute(
        f"SELECT CASE WHEN last_value = %s THEN setval(%s, %s, false) END FROM {sequence}",  # noqa: S608 (our sequence names)
        [first + reserved - 1, sequence, first + used],
    )


def _copy(cursor, table: str, columns: str, data: bytes) -> None:
    if not data:
        return
    view = memoryview(data)
    step = 1 << 20
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for offset in range(0, len(view), step):
            copy.write(view[offset : offset + step])


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


# --- the generator (no database from here on) ---------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    notifications: int
    seed: int
    start_ms: int
    end_ms: int
    environment_ids: list[int]
    delivery_base: int
    event_base: int
    chunk_size: int


@dataclass
class _Result:
    statuses: Counter
    outcomes: Counter
    samples: dict[int, dict[str, list[str]]]
    users: int


Chunk = tuple[int, int, int, bytes, bytes, bytes]


class _ForkedChunks:
    """`_generate` run in a forked child, iterated here through a pipe. The pipe's small
    buffer is the back-pressure: the child is at most one chunk ahead.

    The child is forked at once, before the caller starts any thread (forking a process
    with threads running can deadlock the child).
    """

    def __init__(self, plan: _Plan):
        context = multiprocessing.get_context("fork")
        self.receiver, sender = context.Pipe(duplex=False)
        self.child = context.Process(target=_child_main, args=(plan, sender), daemon=True)
        self.child.start()
        sender.close()

    def __iter__(self) -> Iterator[Chunk | _Result]:
        receiver = self.receiver
        while True:
            try:
                header = receiver.recv()
            except EOFError:
                raise RuntimeError("the seed generator process died without a word") from None
            if header[0] == "chunk":
                _, n, d, e = header
                yield (n, d, e, receiver.recv_bytes(), receiver.recv_bytes(), receiver.recv_bytes())
            elif header[0] == "result":
                yield header[1]
                return
            else:
                raise RuntimeError(f"the seed generator failed:\n{header[1]}")

    def close(self) -> None:
        self.receiver.close()  # a child still sending gets a broken pipe and ends
        self.child.join(timeout=5)
        if self.child.is_alive():
            self.child.kill()
            self.child.join()


def _child_main(plan: _Plan, sender) -> None:
    # Forked: never touch the inherited database connection (the process ends with os._exit,
    # so nothing closes it behind the parent's back either).
    try:
        for item in _generate(plan):
            if isinstance(item, _Result):
                sender.send(("result", item))
            else:
                n, d, e, notification_rows, delivery_rows, event_rows = item
                sender.send(("chunk", n, d, e))
                sender.send_bytes(notification_rows)
                sender.send_bytes(delivery_rows)
                sender.send_bytes(event_rows)
    except BrokenPipeError:
        pass  # the parent gave up
    except BaseException:
        with contextlib.suppress(OSError):
            sender.send(("error", traceback.format_exc()))
    finally:
        sender.close()


# Plain strings (not the TextChoices members) in the hot loop.
RECEIVED, IGNORED, SENDING, SENT, DELIVERED, FAILED, ENGAGEMENT = (
    EventKind.RECEIVED.value,
    EventKind.IGNORED.value,
    EventKind.SENDING.value,
    EventKind.SENT.value,
    EventKind.DELIVERED.value,
    EventKind.FAILED.value,
    EventKind.ENGAGEMENT.value,
)
SUCCESS, FAILURE = NotificationStatus.SUCCESS.value, NotificationStatus.FAILURE.value
NULL = "\\N"


def _copy_text(template: str) -> str:
    """Escape a template for COPY text format (values put into it never need escaping)."""
    return template.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


# Users ---------------------------------------------------------------------------------------

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Sandra",
    "Mark",
    "Emily",
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Amelia",
    "Oliver",
    "Sophia",
    "Lucas",
    "Mia",
    "Ethan",
    "Chloe",
    "Hannah",
    "Lukas",
    "Lena",
    "Felix",
    "Marie",
    "Jonas",
    "Anna",
    "Leon",
    "Laura",
    "Priya",
    "Arjun",
    "Ananya",
    "Rahul",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Carlos",
    "Sofia",
    "Mateus",
    "Ana",
    "Lucia",
    "Pedro",
    "Camille",
    "Louis",
    "Chiara",
    "Marco",
    "Aisha",
    "Omar",
    "Fatima",
    "Ivan",
    "Olga",
    "Sven",
    "Ingrid",
    "Liam",
    "Zoe",
    "Noor",
    "Kofi",
    "Amara",
]
ACCENTED = {"Zoe": "Zoë", "Lucia": "Lucía", "Sofia": "Sofía", "Lena": "Léna", "Ingrid": "Ingrid"}
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Campbell",
    "Mitchell",
    "Roberts",
    "Carter",
    "Phillips",
    "Evans",
    "Turner",
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Patel",
    "Sharma",
    "Singh",
    "Kumar",
    "Gupta",
    "Chen",
    "Wang",
    "Li",
    "Zhang",
    "Tanaka",
    "Sato",
    "Suzuki",
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Dubois",
    "Moreau",
    "Laurent",
    "Rossi",
    "Russo",
    "Ferrari",
    "Novak",
    "Ivanova",
    "Andersson",
    "Johansson",
    "Okafor",
    "Mensah",
    "Haddad",
    "Khan",
    "Nguyen",
    "Tran",
    "Kim",
    "Park",
]
EMAIL_DOMAINS = (
    ("example.com", 40),
    ("example.org", 15),
    ("example.net", 15),
    ("mail.example.com", 10),
    ("inbox.example.org", 8),
    ("corp.example.net", 7),
    ("example.co.uk", 5),
)


def _us(rng: random.Random) -> tuple[str, str]:
    area, zone = rng.choice(US_AREAS)
    return f"+1{area}{rng.randrange(200, 1000)}{rng.randrange(10000):04d}", zone


US_AREAS = (
    ("212", "America/New_York"),
    ("646", "America/New_York"),
    ("617", "America/New_York"),
    ("305", "America/New_York"),
    ("404", "America/New_York"),
    ("312", "America/Chicago"),
    ("512", "America/Chicago"),
    ("214", "America/Chicago"),
    ("303", "America/Denver"),
    ("602", "America/Phoenix"),
    ("415", "America/Los_Angeles"),
    ("213", "America/Los_Angeles"),
    ("206", "America/Los_Angeles"),
    ("416", "America/Toronto"),
    ("604", "America/Vancouver"),
)


# (weight, make number and zone)
def _mobile(country_code: str, prefixes: tuple[str, ...], digits: int, zone: str):
    """Numbers in mobile ranges that libphonenumber accepts as valid for the country."""

    def make(rng: random.Random) -> tuple[str, str]:
        prefix = rng.choice(prefixes)
        rest = digits - len(prefix)
        return f"+{country_code}{prefix}{rng.randrange(10**rest):0{rest}d}", zone

    return make


# (weight, make a number and its time zone)
COUNTRIES: tuple[tuple[int, Callable[[random.Random], tuple[str, str]]], ...] = (
    (55, _us),
    (14, _mobile("44", ("71", "73", "74", "75", "78"), 10, "Europe/London")),
    (10, _mobile("49", ("151", "152", "160", "170", "171", "176"), 11, "Europe/Berlin")),
    (5, _mobile("33", ("61", "62", "64", "65", "66", "67", "73", "75", "77"), 9, "Europe/Paris")),
    (5, _mobile("61", ("40", "41", "42", "43", "46"), 9, "Australia/Sydney")),
    (6, _mobile("91", ("6", "7", "8", "9"), 10, "Asia/Kolkata")),
    (5, _mobile("55", ("119",), 11, "America/Sao_Paulo")),
)


@dataclass(frozen=True)
class _User:
    user_id: str
    first_name: str
    email: str
    number: str
    timezone: str
    json: str  # the request's "user" object, pre-rendered


def _make_user(rng: random.Random) -> _User:
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    domain = rng.choices([d for d, _ in EMAIL_DOMAINS], [w for _, w in EMAIL_DOMAINS])[0]
    style = rng.random()
    number_suffix = str(rng.randrange(1, 100))
    if style < 0.45:
        local = f"{first}.{last}{number_suffix}"
    elif style < 0.65:
        local = f"{first}.{last}"
    elif style < 0.8:
        local = f"{first[0]}{last}{number_suffix}"
    elif style < 0.92:
        local = f"{first}_{last}{rng.randrange(1970, 2008)}"
    else:
        local = f"{first}{last[0]}{rng.randrange(100, 1000)}"
    # Most people type their address in lower case; some keep the capitals of their name.
    case = rng.random()
    if case < 0.85:
        email = f"{local}@{domain}".lower()
    elif case < 0.97:
        email = f"{local}@{domain}"
    else:
        email = f"{local}@{domain.upper()}"
    weights = [w for w, _ in COUNTRIES]
    make = rng.choices([m for _, m in COUNTRIES], weights)[0]
    number, zone = make(rng)
    user_id = f"usr_{rng.getrandbits(64):016x}"
    display_first = ACCENTED.get(first, first) if rng.random() < 0.3 else first
    user_json = f'{{"id": "{user_id}", "email": "{email}", "number": "{number}"}}'
    return _User(user_id, display_first, email, number, zone, user_json)


# The catalogue -------------------------------------------------------------------------------

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CARRIERS = ("UPS", "FedEx", "DHL", "USPS", "Royal Mail", "DPD")
CLINICS = ("Dr. Alvarez, Main St Clinic", "Riverside Dental", "City Physio", "Dr. Okafor")
DEVICES = ("Chrome on Windows", "Safari on iPhone", "Firefox on Linux", "Edge on Windows")
CITIES = ("Berlin", "London", "Austin", "São Paulo", "Mumbai", "Toronto", "Sydney", "Lyon")
PLANS = ("Starter", "Pro", "Team", "Business")
POSTS = ("Q3 roadmap", "Release notes 4.2", "Team offsite", "Bug #1182")
COMMENTERS = ("Alex Kim", "Sam Patel", "Jordan Lee", "Chris Novak", "Taylor Haddad")


def _hours(rng: random.Random) -> str:
    return f"{rng.choice(WEEKDAYS)} {rng.randrange(8, 18)}:{rng.choice(('00', '15', '30', '45'))}"


TAGS: dict[str, Callable[[random.Random], str]] = {
    "orderId": lambda r: f"ORD-{r.randrange(100000, 1000000)}",
    "carrier": lambda r: r.choice(CARRIERS),
    "trackingNumber": lambda r: f"1Z{r.getrandbits(60):015X}",
    "eta": lambda r: r.choice(WEEKDAYS),
    "resetToken": lambda r: f"{r.getrandbits(96):024x}",
    "invoiceNumber": lambda r: f"INV-2026-{r.randrange(100000):05d}",
    "amount": lambda r: f"{r.randrange(900, 250000) / 100:.2f}",
    "currency": lambda r: r.choice(("USD", "USD", "EUR", "GBP")),
    "dueDate": lambda r: f"{r.randrange(1, 29)} Dec 2026",
    "appointmentTime": _hours,
    "location": lambda r: r.choice(CLINICS),
    "device": lambda r: r.choice(DEVICES),
    "city": lambda r: r.choice(CITIES),
    "ipAddress": lambda r: f"203.0.113.{r.randrange(1, 255)}",
    "planName": lambda r: r.choice(PLANS),
    "newItems": lambda r: str(r.randrange(1, 40)),
    "code": lambda r: f"{r.randrange(10**6):06d}",
    "commenter": lambda r: r.choice(COMMENTERS),
    "postTitle": lambda r: r.choice(POSTS),
    "delayDays": lambda r: str(r.randrange(1, 5)),
}


@dataclass(frozen=True)
class _Type:
    key: str
    weight: int
    channels: tuple[str, ...]
    tags: tuple[str, ...]
    subject: str
    heading: str
    body: str  # HTML paragraphs
    text: str  # the email's text part
    sms: str = ""
    call: str = ""
    in_app: str = ""
    opt_out: float = 0.004  # share of users who turned this type off on some channel


TYPES = (
    _Type(
        "order_tracking",
        20,
        ("email", "sms"),
        ("orderId", "carrier", "trackingNumber", "eta"),
        subject="Your order %(orderId)s is on its way",
        heading="Your order is on its way",
        body=(
            "<p>Hi %(firstName)s,</p><p>Good news: order <b>%(orderId)s</b> has shipped with "
            '%(carrier)s and should arrive by <b>%(eta)s</b>.</p><p><a href="https://{domain}'
            '/orders/%(orderId)s" style="background:#1a73e8;color:#fff;padding:10px 16px;'
            'text-decoration:none;border-radius:4px">Track your package</a></p>'
            "<p>Tracking number: %(trackingNumber)s</p>"
        ),
        text=(
            "Hi %(firstName)s,\n\nOrder %(orderId)s has shipped with %(carrier)s and should "
            "arrive by %(eta)s.\nTrack it: https://{domain}/orders/%(orderId)s\n"
            "Tracking number: %(trackingNumber)s\n\n{brand}"
        ),
        sms="{brand}: order %(orderId)s shipped with %(carrier)s, arriving %(eta)s. "
        "Track: https://{domain}/t/%(trackingNumber)s",
    ),
    _Type(
        "password_reset",
        14,
        ("email",),
        ("resetToken",),
        subject="Reset your {brand} password",
        heading="Reset your password",
        body=(
            "<p>Hi %(firstName)s,</p><p>We received a request to reset your password. The "
            'link below is valid for 60 minutes.</p><p><a href="https://{domain}/reset/'
            '%(resetToken)s" style="background:#1a73e8;color:#fff;padding:10px 16px;'
            'text-decoration:none;border-radius:4px">Choose a new password</a></p><p>If you '
            "did not ask for this, you can ignore this email.</p>"
        ),
        text=(
            "Hi %(firstName)s,\n\nReset your password (valid 60 minutes):\n"
            "https://{domain}/reset/%(resetToken)s\n\nIf you did not ask for this, ignore "
            "this email.\n\n{brand}"
        ),
        opt_out=0.0,
    ),
    _Type(
        "welcome",
        8,
        ("in_app", "email"),
        ("planName",),
        subject="Welcome to {brand}, %(firstName)s!",
        heading="Welcome aboard",
        body=(
            "<p>Hi %(firstName)s,</p><p>Thanks for joining {brand}. Your %(planName)s plan "
            "is ready.</p><ul><li>Complete your profile</li><li>Invite your team</li>"
            '<li>Connect your first integration</li></ul><p><a href="https://{domain}/start">'
            "Get started</a></p>"
        ),
        text=(
            "Hi %(firstName)s,\n\nThanks for joining {brand}. Your %(planName)s plan is ready."
            "\nGet started: https://{domain}/start\n\n{brand}"
        ),
        in_app="Welcome to {brand}! Your %(planName)s plan is ready.",
    ),
    _Type(
        "invoice_ready",
        12,
        ("email",),
        ("invoiceNumber", "amount", "currency", "dueDate"),
        subject="Invoice %(invoiceNumber)s is ready",
        heading="Your invoice is ready",
        body=(
            "<p>Hi %(firstName)s,</p><p>Invoice <b>%(invoiceNumber)s</b> for <b>%(amount)s "
            '%(currency)s</b> is ready and due on %(dueDate)s.</p><p><a href="https://'
            '{domain}/billing/%(invoiceNumber)s">View and pay the invoice</a></p>'
        ),
        text=(
            "Hi %(firstName)s,\n\nInvoice %(invoiceNumber)s for %(amount)s %(currency)s is "
            "due on %(dueDate)s.\nhttps://{domain}/billing/%(invoiceNumber)s\n\n{brand}"
        ),
        opt_out=0.002,
    ),
    _Type(
        "appointment_reminder",
        12,
        ("sms",),
        ("appointmentTime", "location"),
        subject="Appointment reminder",
        heading="Appointment reminder",
        body="<p>Hi %(firstName)s, see you %(appointmentTime)s at %(location)s.</p>",
        text="Hi %(firstName)s, see you %(appointmentTime)s at %(location)s.",
        sms="Reminder: your appointment with %(location)s is %(appointmentTime)s. "
        "Reply C to confirm or R to reschedule.",
        opt_out=0.006,
    ),
    _Type(
        "security_alert",
        4,
        ("email", "sms"),
        ("device", "city", "ipAddress"),
        subject="New sign-in to your {brand} account",
        heading="New sign-in detected",
        body=(
            "<p>Hi %(firstName)s,</p><p>Your account was just signed in to from <b>"
            "%(device)s</b> near %(city)s (IP %(ipAddress)s).</p><p>If this was not you, "
            '<a href="https://{domain}/security">secure your account</a> now.</p>'
        ),
        text=(
            "Hi %(firstName)s,\n\nNew sign-in from %(device)s near %(city)s (IP "
            "%(ipAddress)s).\nNot you? https://{domain}/security\n\n{brand}"
        ),
        sms="{brand}: new sign-in from %(device)s near %(city)s. Not you? https://{domain}/security",
        opt_out=0.0,
    ),
    _Type(
        "weekly_digest",
        12,
        ("email",),
        ("newItems",),
        subject="Your weekly summary: %(newItems)s new updates",
        heading="This week at {brand}",
        body=(
            "<p>Hi %(firstName)s,</p><p>You have <b>%(newItems)s</b> new updates this week."
            '</p><p><a href="https://{domain}/digest">See what you missed</a></p><p style="'
            'font-size:12px">Too many emails? <a href="https://{domain}/unsubscribe">'
            "Unsubscribe from the digest</a>.</p>"
        ),
        text=(
            "Hi %(firstName)s,\n\nYou have %(newItems)s new updates this week.\n"
            "https://{domain}/digest\n\nUnsubscribe: https://{domain}/unsubscribe"
        ),
        opt_out=0.04,
    ),
    _Type(
        "verification_call",
        4,
        ("call",),
        ("code",),
        subject="Verification call",
        heading="Verification call",
        body="<p>Your code is %(code)s.</p>",
        text="Your code is %(code)s.",
        call=(
            '<Response><Say voice="alice">Hello. Your {brand} verification code is '
            "%(code)s. Again, your code is %(code)s.</Say></Response>"
        ),
        opt_out=0.0,
    ),
    _Type(
        "new_comment",
        8,
        ("in_app",),
        ("commenter", "postTitle"),
        subject="New comment",
        heading="New comment",
        body="<p>%(commenter)s commented on %(postTitle)s.</p>",
        text="%(commenter)s commented on %(postTitle)s.",
        in_app="%(commenter)s commented on “%(postTitle)s”",
        opt_out=0.01,
    ),
    _Type(
        "shipping_delay",
        6,
        ("sms",),
        ("orderId", "delayDays"),
        subject="Shipping delay",
        heading="Shipping delay",
        body="<p>Order %(orderId)s is delayed by %(delayDays)s days.</p>",
        text="Order %(orderId)s is delayed by %(delayDays)s days.",
        sms="{brand}: sorry, order %(orderId)s is delayed by %(delayDays)s day(s). "
        "We will text you when it ships.",
        opt_out=0.003,
    ),
)

_MAX_CHANNELS = max(len(kind.channels) for kind in TYPES)

LAYOUT = (
    '<!DOCTYPE html><html><body style="font-family:Helvetica,Arial,sans-serif;color:#222">'
    '<h1 style="font-size:20px">{heading}</h1>{body}<p style="font-size:12px;color:#888">'
    '{brand} &middot; <a href="https://{domain}/settings">Notification settings</a></p>'
    "</body></html>"
)

# Environments: brand and providers, in rotation.
PROFILES = (
    ("Northwind Outfitters", "northwind.example.com", "amazon_ses", "twilio"),
    ("Globex Health", "globex.example.com", "sandbox", "sandbox"),
    ("Initech Billing", "initech.example.com", "sendgrid", "twilio"),
    ("Hooli Cloud", "hooli.example.com", "smtp", "twilio"),
)
PROVIDER_LABELS = {
    "amazon_ses": "Amazon SES",
    "sendgrid": "SendGrid",
    "smtp": "smtp.hooli.example.com",
    "twilio": "Twilio",
    "sandbox": "the sandbox",
    "in_app": "the in-app inbox",
}


@dataclass
class _EnvContext:
    environment_id: int
    brand: str
    domain: str
    email_provider: str
    phone_provider: str
    account_sid: str
    from_number: str
    users: list[_User]
    templates: dict[str, dict[str, str]]  # type -> part -> template (COPY-escaped)


def _render_templates(kind: _Type, brand: str, domain: str) -> dict[str, str]:
    def fill(template: str) -> str:
        return template.replace("{brand}", brand).replace("{domain}", domain)

    html = LAYOUT.replace("{heading}", kind.heading).replace("{body}", kind.body)
    keys = ("firstName", *kind.tags)
    merge_tags = "{" + ", ".join(f'"{key}": "%({key})s"' for key in keys) + "}"
    return {
        "subject": _copy_text(fill(kind.subject)),
        "html": _copy_text(fill(html)),
        "text": _copy_text(fill(kind.text)),
        "sms": _copy_text(fill(kind.sms)),
        "call": _copy_text(fill(kind.call)),
        "in_app": _copy_text(fill(kind.in_app or kind.subject)),
        "merge_tags": merge_tags,
    }


# Time ----------------------------------------------------------------------------------------

# Relative send volume by UTC hour: quiet at night in the Americas and Europe, busy afternoons.
HOURLY = (
    0.35, 0.3, 0.28, 0.27, 0.3, 0.38, 0.5, 0.65, 0.8, 0.9, 0.95, 1.0,
    1.0, 1.0, 1.0, 0.98, 0.95, 0.92, 0.88, 0.8, 0.7, 0.6, 0.5, 0.42,
)  # fmt: skip


def _created_times(rng: random.Random, start_ms: int, end_ms: int, count: int) -> list[int]:
    """`count` sorted creation times in [start_ms, end_ms), following the daily rhythm."""
    span = end_ms - start_ms
    times = []
    append = times.append
    random_ = rng.random
    while len(times) < count:
        t = start_ms + int(random_() * span)
        if random_() < HOURLY[(t // 3_600_000) % 24]:
            append(t)
    times.sort()
    return times


# The generator ---------------------------------------------------------------------------------


def _generate(plan: _Plan) -> Iterator[Chunk | _Result]:
    rng = random.Random(plan.seed)
    rand = rng.random
    bits = rng.getrandbits
    randrange = rng.randrange
    end_ms = plan.end_ms
    env_count = len(plan.environment_ids)

    # Users and templates per environment.
    total_users = max(env_count, plan.notifications // 20)
    envs: list[_EnvContext] = []
    for index, env_id in enumerate(plan.environment_ids):
        brand, domain, email_provider, phone_provider = PROFILES[index % len(PROFILES)]
        if index >= len(PROFILES):
            brand = f"{brand} {index // len(PROFILES) + 1}"
        pool = max(1, total_users // env_count)
        envs.append(
            _EnvContext(
                environment_id=env_id,
                brand=brand,
                domain=domain,
                email_provider=email_provider,
                phone_provider=phone_provider,
                account_sid=f"AC{bits(128):032x}",
                from_number=f"+1415555{randrange(100, 200):04d}",
                users=[_make_user(rng) for _ in range(pool)],
                templates={kind.key: _render_templates(kind, brand, domain) for kind in TYPES},
            )
        )
    # Bigger tenants first: environment weights E, E-1, ..., 1.
    env_cum = []
    acc = 0
    for index in range(env_count):
        acc += env_count - index
        env_cum.append(acc)
    type_cum = []
    acc = 0
    for kind in TYPES:
        acc += kind.weight
        type_cum.append(acc)
    times = _created_times(rng, plan.start_ms, plan.end_ms, plan.notifications)

    # Timestamps as COPY text, cheaply: day strings and second-of-day strings precomputed.
    first_day = plan.start_ms // 86_400_000
    last_day = plan.end_ms // 86_400_000 + 7  # planned events may fall after `end`
    days = [
        datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
        for day in range(first_day, last_day + 1)
    ]
    hms = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]

    def ts(t: int) -> str:
        seconds, millis = divmod(t, 1000)
        day, second = divmod(seconds, 86400)
        return f"{days[day - first_day]} {hms[second]}.{millis:03d}+00"

    def iso(t: int) -> str:
        seconds, millis = divmod(t, 1000)
        day, second = divmod(seconds, 86400)
        return f"{days[day - first_day]}T{hms[second]}.{millis:03d}Z"

    statuses: Counter = Counter()
    outcomes: Counter = Counter()
    samples: dict[int, dict[str, list[str]]] = {
        env.environment_id: {
            "tracking_ids": [],
            "user_ids": [],
            "emails": [],
            "numbers": [],
            "provider_message_ids": [],
            "notification_types": [],
        }
        for env in envs
    }
    sample_stride = max(1, plan.notifications // (SAMPLES_PER_ENVIRONMENT * env_count * 3))

    next_delivery = plan.delivery_base
    next_event = plan.event_base
    uuid_ = uuid.UUID
    b64 = base64.urlsafe_b64encode

    for chunk_start in range(0, plan.notifications, plan.chunk_size):
        chunk_end = min(plan.notifications, chunk_start + plan.chunk_size)
        n_out: list[str] = []
        d_out: list[str] = []
        e_out: list[str] = []
        delivery_count = 0
        event_start = next_event
        for index in range(chunk_start, chunk_end):
            created = times[index]
            created_ts = ts(created)
            env = envs[bisect_right(env_cum, rand() * env_cum[-1])]
            env_id = env.environment_id
            kind = TYPES[bisect_right(type_cum, rand() * type_cum[-1])]
            # A few heavy users, many light ones.
            user = env.users[int(len(env.users) * rand() ** 1.6)]
            nid = str(uuid_(int=bits(128), version=4))
            values = {"firstName": user.first_name}
            for tag in kind.tags:
                values[tag] = TAGS[tag](rng)
            templates = env.templates[kind.key]
            merge_tags = templates["merge_tags"] % values
            request = (
                f'{{"notificationId": "{kind.key}", "user": {user.json}, '
                f'"mergeTags": {merge_tags}}}'
            )
            idempotency_key = f"{kind.key}-{bits(48):012x}" if rand() < 0.2 else ""

            # Received (api), then each channel through the pipeline.
            e_out.append(
                f"{next_event}\t{nid}\t{created_ts}\t{NULL}\t{env_id}\t{RECEIVED}\t\t\t"
                f"{created_ts}\t{created_ts}\tapi\t\treceived\tReceived via the API\t{NULL}\n"
            )
            next_event += 1
            updated = created
            plan_limited = rand() < 0.002
            channel_states: list[tuple[str, bool]] = []
            sample_pmid = ""
            for channel in kind.channels:
                did = next_delivery
                next_delivery += 1
                delivery_count += 1
                reports = True
                pmid = ""
                subject = html = text = ""
                if channel == "email":
                    provider = env.email_provider
                    destination = user.email
                    subject = templates["subject"] % values
                    html = templates["html"] % values
                    text = templates["text"] % values
                    reports = provider != "smtp"
                elif channel == "sms":
                    provider = env.phone_provider
                    destination = user.number
                    text = templates["sms"] % values
                elif channel == "call":
                    provider = env.phone_provider
                    destination = user.number
                    text = templates["call"] % values
                else:
                    provider = "in_app"
                    destination = user.user_id
                    text = templates["in_app"] % values
                label = PROVIDER_LABELS[provider]

                # Planned events: (time, kind, sub_kind, source, provider event id, detail,
                # payload, error code, error message). Filtered by `end` below.
                events: list[tuple] = []
                t = created + 15 + int(rand() * rand() * 1200)
                r = rand()
                if plan_limited:
                    events.append(
                        (t, IGNORED, "plan_limit", "pipeline", "", "Monthly plan limit reached "
                         "(notifications over the plan's quota are not sent)", NULL, "", "")
                    )  # fmt: skip
                elif r < kind.opt_out:
                    events.append(
                        (t, IGNORED, "user_preference", "pipeline", "",
                         f"The user turned off {channel.replace('_', '-')} for {kind.key}",
                         NULL, "", "")
                    )  # fmt: skip
                elif r < kind.opt_out + 0.001:
                    events.append(
                        (t, IGNORED, "dashboard_preference", "pipeline", "",
                         f"{channel.replace('_', '-').capitalize()} is turned off for "
                         f"{kind.key} in the dashboard", NULL, "", "")
                    )  # fmt: skip
                else:
                    events.append(
                        (t, SENDING, "", "pipeline", "", f"Sending to {destination} via {label}",
                         NULL, "", "")
                    )  # fmt: skip
                    t_sent = t + 60 + int(rand() * 700)
                    # Callbacks: usually seconds; now and then (provider backlog) much later.
                    late = int(-1_800_000 * _log(rand())) if rand() < 0.004 else 0
                    r = rand()
                    if channel == "email":
                        events, pmid = _email(
                            events, rng, provider, label, destination, t_sent, late, r, iso, b64,
                        )  # fmt: skip
                    elif channel == "sms":
                        events, pmid = _sms(
                            events, rng, provider, label, destination, env, t_sent, late, r
                        )
                    elif channel == "call":
                        events, pmid = _call(
                            events, rng, provider, label, destination, env, t_sent, late, r
                        )
                    else:
                        events.append(
                            (t_sent, SENT, "", "pipeline", "", "Stored in the in-app inbox",
                             NULL, "", "")
                        )  # fmt: skip
                        events.append(
                            (t_sent + 200 + int(rand() * 5000), DELIVERED, "", "pipeline", "",
                             "Delivered to the user's inbox (websocket)", NULL, "", "")
                        )  # fmt: skip

                # State from the events that have happened by `end` (what logs.status derives).
                state = RECEIVED
                detail = error_code = error_message = ""
                sent_at = delivered_at = failed_at = NULL
                d_updated = created
                for ev_t, ev_kind, ev_sub, source, peid, ev_detail, payload, code, msg in events:
                    if ev_t > end_ms:
                        break
                    if source == "pipeline":
                        recorded = ev_t
                        dedupe = f"{ev_kind}:{channel}" if ev_kind != ENGAGEMENT else peid
                    else:
                        recorded = min(ev_t + 150 + int(rand() * 2500), end_ms)
                        dedupe = peid
                    if recorded > d_updated:
                        d_updated = recorded
                    occurred_ts = ts(ev_t)
                    e_out.append(
                        f"{next_event}\t{nid}\t{created_ts}\t{did}\t{env_id}\t{ev_kind}\t{ev_sub}"
                        f"\t{channel}\t{occurred_ts}\t{ts(recorded)}\t{source}\t{peid}\t"
                        f"{dedupe}\t{ev_detail}\t{payload}\n"
                    )
                    next_event += 1
                    if ev_kind == SENDING:
                        if state == RECEIVED:
                            state = SENDING
                    elif ev_kind == SENT:
                        if sent_at is NULL:
                            sent_at = occurred_ts
                        if state in (RECEIVED, SENDING):
                            state = SENT
                    elif ev_kind == DELIVERED:
                        state, detail = DELIVERED, ev_sub
                        delivered_at, failed_at = occurred_ts, NULL
                        error_code = error_message = ""
                    elif ev_kind == FAILED:
                        state, detail = FAILED, ev_sub
                        failed_at, delivered_at = occurred_ts, NULL
                        error_code, error_message = code, msg
                    elif ev_kind == IGNORED:
                        state, detail = IGNORED, ev_sub
                if d_updated > updated:
                    updated = d_updated
                channel_states.append((state, reports))
                outcomes[f"{channel} {state} {detail}".rstrip()] += 1
                if pmid and not sample_pmid:
                    sample_pmid = pmid
                d_out.append(
                    f"{did}\t{nid}\t{created_ts}\t{env_id}\t{channel}\t{state}\t{detail}\t"
                    f"{provider}\t{pmid}\t{'t' if reports else 'f'}\t{destination}\t{subject}\t"
                    f"{html}\t{text}\t{error_code}\t{error_message}\t{sent_at}\t{delivered_at}\t"
                    f"{failed_at}\t{ts(d_updated)}\n"
                )

            status = _status(channel_states)
            statuses[status] += 1
            n_out.append(
                f"{nid}\t{env_id}\t{kind.key}\t{user.user_id}\t{user.email}\t{user.number}\t"
                f"{user.timezone}\t{merge_tags}\t{request}\t{status}\t{created_ts}\t"
                f"{ts(updated)}\t{idempotency_key}\t{NULL}\n"
            )
            if index % sample_stride == 0:
                bucket = samples[env_id]
                if len(bucket["tracking_ids"]) < SAMPLES_PER_ENVIRONMENT:
                    bucket["tracking_ids"].append(nid)
                    bucket["user_ids"].append(user.user_id)
                    bucket["emails"].append(user.email)
                    bucket["numbers"].append(user.number)
                    bucket["notification_types"].append(kind.key)
                    if sample_pmid:
                        bucket["provider_message_ids"].append(sample_pmid)
        if next_event - plan.event_base > plan.notifications * (
            1 + _MAX_CHANNELS * _MAX_EVENTS_PER_DELIVERY
        ):
            raise RuntimeError("more events than ids reserved: raise _MAX_EVENTS_PER_DELIVERY")
        yield (
            chunk_end - chunk_start,
            delivery_count,
            next_event - event_start,
            "".join(n_out).encode(),
            "".join(d_out).encode(),
            "".join(e_out).encode(),
        )
    yield _Result(
        statuses=statuses,
        outcomes=outcomes,
        samples=samples,
        users=sum(len(env.users) for env in envs),
    )


def _log(x: float) -> float:
    return log(x or 1e-12)


def _status(channels: list[tuple[str, bool]]) -> str:
    """notification_status of logs.status, for the shapes the generator makes."""
    attempted = [(state, reports) for state, reports in channels if state != IGNORED]
    if any(state == FAILED for state, _ in attempted):
        return FAILURE
    if all(state == DELIVERED or (state == SENT and not reports) for state, reports in attempted):
        return SUCCESS
    return RECEIVED


# Channel outcomes --------------------------------------------------------------------------------

SES_BOUNCES = (
    ("550", "smtp; 550 5.1.1 The email account that you tried to reach does not exist"),
    ("550", "smtp; 550 5.1.1 <recipient>: Recipient address rejected: User unknown"),
    ("552", "smtp; 552 5.2.2 The email account that you tried to reach is over quota"),
    ("554", "smtp; 554 5.7.1 Message rejected due to content restrictions"),
)
DEFERRALS = (
    "421 4.7.0 Try again later, closing connection",
    "451 4.7.1 Greylisted, please try again in 300 seconds",
    "450 4.2.1 The user you are trying to contact is receiving mail too quickly",
)
USER_AGENTS = ("Apple Mail", "Gmail image proxy", "Outlook 16", "iPhone Mail", "Thunderbird")


def _email(events, rng, provider, label, destination, t_sent, late, r, iso, b64):
    """Email after Sending: (events, provider message id)."""
    rand = rng.random
    bits = rng.getrandbits
    if provider == "amazon_ses":
        pmid = (
            f"0100{t_sent:012x}-{bits(32):08x}-{bits(16):04x}-{bits(16):04x}-"
            f"{bits(16):04x}-{bits(48):012x}-000000"
        )
    elif provider == "sendgrid":
        pmid = b64(bits(128).to_bytes(16)).decode()[:22] + ".recvd-7f9c-1-0"
    elif provider == "smtp":
        pmid = f"<{bits(80):020x}@mail.hooli.example.com>"
    else:
        pmid = f"sbx_em_{bits(128):032x}"

    if r < 0.002:  # refused at send time: no provider message
        reason = (
            "Email address is on the account-level suppression list"
            if provider != "smtp"
            else "550 5.7.1 Relaying denied"
        )
        events.append(
            (t_sent, FAILED, "", "pipeline", "", f"{label} rejected the message: {reason}",
             NULL, "MessageRejected", reason)
        )  # fmt: skip
        return events, ""
    events.append((t_sent, SENT, "", "pipeline", "", f"Accepted by {label}", NULL, "", ""))
    if provider == "smtp":
        return events, pmid  # plain SMTP never says more

    def event(t, kind, sub, esp_type, detail, code="", message="", extra=""):
        if provider == "amazon_ses":
            peid = str(uuid.UUID(int=bits(128), version=4))
            payload = (
                f'{{"eventType": "{esp_type}", "mail": {{"messageId": "{pmid}", '
                f'"destination": ["{destination}"]}}, "timestamp": "{iso(t)}"{extra}}}'
            )
        elif provider == "sendgrid":
            peid = b64(bits(128).to_bytes(16)).decode()[:22]
            payload = (
                f'{{"event": "{SENDGRID_TYPES[esp_type]}", "email": "{destination}", '
                f'"sg_event_id": "{peid}", "sg_message_id": "{pmid}", "timestamp": '
                f"{t // 1000}{extra}}}"
            )
        else:
            peid = f"sbx_evt_{bits(96):024x}"
            payload = (
                f'{{"event_type": "{ANYMAIL_TYPES[esp_type]}", "message_id": "{pmid}", '
                f'"event_id": "{peid}", "recipient": "{destination}", "timestamp": '
                f'"{iso(t)}"{extra}}}'
            )
        return (t, kind, sub, provider, peid, detail, payload, code, message)

    t = t_sent + 300 + int(rand() ** 3 * 30_000) + late
    if r < 0.032:  # bounce; now and then after the receiving server first accepted it
        code, diagnostic = rng.choice(SES_BOUNCES)
        extra = (
            f', "bounce": {{"bounceType": "Permanent", "bounceSubType": "General", '
            f'"diagnosticCode": "{diagnostic}"}}'
        )
        if rand() < 0.15:
            events.append(event(t, DELIVERED, "", "Delivery", "Delivered: 250 2.0.0 OK"))
            t += 60_000 + int(rand() * 3_600_000)
        events.append(
            event(t, FAILED, "bounce", "Bounce", f"Permanent bounce: {diagnostic}", code,
                  diagnostic, extra)
        )  # fmt: skip
        return events, pmid
    if r < 0.052:  # deferred; most get through on a retry
        deferral = rng.choice(DEFERRALS)
        t += 300_000 + int(rand() * 1_500_000)
        events.append(
            event(t, FAILED, "delivery_delay", "DeliveryDelay",
                  f"Delivery delayed: {deferral} (will retry)", deferral[:3], deferral,
                  ', "deliveryDelay": {"delayType": "TransientCommunicationFailure"}')
        )  # fmt: skip
        if rand() < 0.7:
            t += 1_200_000 + int(rand() * 14_400_000)
            events.append(event(t, DELIVERED, "", "Delivery", "Delivered: 250 2.0.0 OK"))
        return events, pmid
    if r < 0.053:  # accepted, and the provider never reported back
        return events, pmid
    events.append(event(t, DELIVERED, "", "Delivery", "Delivered: 250 2.0.0 OK"))
    e = rand()
    if e < 0.05:
        t_open = t + 30_000 + int(rand() ** 2 * 172_800_000)
        agent = rng.choice(USER_AGENTS)
        events.append(event(t_open, ENGAGEMENT, "opened", "Open", f"Opened ({agent})"))
        if e < 0.02:
            t_click = t_open + 3_000 + int(rand() * 600_000)
            events.append(event(t_click, ENGAGEMENT, "clicked", "Click", "Clicked the main link"))
    elif e < 0.052:
        t_complaint = t + 600_000 + int(rand() * 86_400_000)
        events.append(
            event(t_complaint, ENGAGEMENT, "complained", "Complaint",
                  "Marked as spam by the recipient (feedback loop)")
        )  # fmt: skip
    elif e < 0.053:
        t_unsubscribe = t + 600_000 + int(rand() * 86_400_000)
        events.append(
            event(t_unsubscribe, ENGAGEMENT, "unsubscribed", "Subscription",
                  "Unsubscribed (List-Unsubscribe)")
        )  # fmt: skip
    return events, pmid


ANYMAIL_TYPES = {
    "Delivery": "delivered",
    "Bounce": "bounced",
    "DeliveryDelay": "deferred",
    "Open": "opened",
    "Click": "clicked",
    "Complaint": "complained",
    "Subscription": "unsubscribed",
}
SENDGRID_TYPES = {
    "Delivery": "delivered",
    "Bounce": "bounce",
    "DeliveryDelay": "deferred",
    "Open": "open",
    "Click": "click",
    "Complaint": "spamreport",
    "Subscription": "unsubscribe",
}
SMS_UNDELIVERED = (
    ("30003", "Unreachable destination handset"),
    ("30003", "Unreachable destination handset"),
    ("30005", "Unknown destination handset"),
    ("30006", "Landline or unreachable carrier"),
)


def _twilio_sms(sid, status, destination, env, extra=""):
    return (
        f'{{"MessageSid": "{sid}", "SmsSid": "{sid}", "MessageStatus": "{status}", '
        f'"AccountSid": "{env.account_sid}", "From": "{env.from_number}", "To": "{destination}", '
        f'"ApiVersion": "2010-04-01"{extra}}}'
    )


def _sms(events, rng, provider, label, destination, env, t_sent, late, r):
    rand = rng.random
    prefix = "SM" if provider == "twilio" else "SMsbx"
    sid = f"{prefix}{rng.getrandbits(128):032x}"
    source = provider
    if r < 0.001:  # refused by the API: invalid number
        message = "The 'To' number is not a valid phone number"
        events.append(
            (t_sent, FAILED, "", "pipeline", "", f"{label} error 21211: {message}", NULL,
             "21211", message)
        )  # fmt: skip
        return events, ""
    events.append((t_sent, SENT, "", "pipeline", "", f"Accepted by {label} (queued)", NULL, "", ""))
    t = t_sent + 1500 + int(rand() ** 2 * 15_000) + late
    if r < 0.021:
        code, message = rng.choice(SMS_UNDELIVERED)
        payload = _twilio_sms(sid, "undelivered", destination, env, f', "ErrorCode": "{code}"')
        events.append(
            (t, FAILED, "undelivered", source, f"{sid}:undelivered",
             f"Twilio error {code}: {message}", payload, code, message)
        )  # fmt: skip
    elif r < 0.031:
        message = "Unknown error"
        payload = _twilio_sms(sid, "failed", destination, env, ', "ErrorCode": "30008"')
        events.append(
            (t, FAILED, "infrastructure", source, f"{sid}:failed",
             f"Twilio error 30008: {message}", payload, "30008", message)
        )  # fmt: skip
    elif r < 0.032:
        pass  # never reported
    else:
        payload = _twilio_sms(sid, "delivered", destination, env)
        events.append(
            (t, DELIVERED, "", source, f"{sid}:delivered", "Delivered to the handset", payload,
             "", "")
        )  # fmt: skip
    return events, sid


def _call(events, rng, provider, label, destination, env, t_sent, late, r):
    rand = rng.random
    prefix = "CA" if provider == "twilio" else "CAsbx"
    sid = f"{prefix}{rng.getrandbits(128):032x}"
    events.append((t_sent, SENT, "", "pipeline", "", f"Call queued with {label}", NULL, "", ""))

    def payload(status, duration, sequence):
        return (
            f'{{"CallSid": "{sid}", "CallStatus": "{status}", "AccountSid": '
            f'"{env.account_sid}", "From": "{env.from_number}", "To": "{destination}", '
            f'"Direction": "outbound-api", "CallDuration": "{duration}", "SequenceNumber": '
            f'"{sequence}", "ApiVersion": "2010-04-01"}}'
        )

    ring = 4_000 + int(rand() * 20_000) + late
    if r < 0.84:
        duration = 12 + int(rand() * 40)
        t = t_sent + ring + duration * 1000
        events.append(
            (t, DELIVERED, "completed", provider, f"{sid}:3",
             f"Call completed after {duration} s", payload("completed", duration, 3), "", "")
        )  # fmt: skip
    elif r < 0.89:
        events.append(
            (t_sent + ring, DELIVERED, "busy", provider, f"{sid}:1", "Line busy",
             payload("busy", 0, 1), "", "")
        )  # fmt: skip
    elif r < 0.97:
        t = t_sent + ring + 30_000
        events.append(
            (t, DELIVERED, "no_answer", provider, f"{sid}:2", "No answer after 30 s",
             payload("no-answer", 0, 2), "", "")
        )  # fmt: skip
    else:
        message = "The number cannot be reached"
        events.append(
            (t_sent + 2_000 + int(rand() * 3_000), FAILED, "cannot_reach", provider,
             f"{sid}:1", f"Call failed: {message}", payload("failed", 0, 1), "", message)
        )  # fmt: skip
    return events, sid
