"""Loading the demo's rows into PostgreSQL: day partitions first, ids reserved from the
sequences in one block, COPY of pre-formatted text chunks by two connections at once while a
forked process generates the next ones (see the package docstring for the numbers)."""

import contextlib
import multiprocessing
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account, Environment
from accounts.services import environment_create
from demo.catalogue import MAX_CHANNELS
from demo.generator import (
    MAX_EVENTS_PER_DELIVERY,
    Chunk,
    Plan,
    Result,
    generate,
    seed_dictionaries,
)
from logs.content import dictionaries_ids
from logs.partitions import partitions_ensure
from logs.signals import log_rows_loaded

NOTIFICATION_COLUMNS = (
    "id, environment_id, notification_type, user_id, email, number, timezone, merge_tags, "
    "request, status, created_at, updated_at, idempotency_key, scheduled_for"
)
DELIVERY_COLUMNS = (
    "id, notification_id, notification_created_at, environment_id, channel, state, "
    "state_detail, provider, provider_message_id, reports_delivery, destination, subject, "
    "html, text, content_packed, content_dictionary_id, error_code, error_message, sent_at, "
    "delivered_at, failed_at, updated_at, sending_at, accepted_at, sender, send_max_attempts"
)
EVENT_COLUMNS = (
    "id, notification_id, notification_created_at, delivery_id, environment_id, kind, "
    "sub_kind, channel, occurred_at, recorded_at, source, provider_event_id, dedupe_key, "
    "detail, payload, payload_packed"
)
SEED_ACCOUNT_PREFIX = "Seed account"
SEED_ENVIRONMENT_NAME = "production"
CHUNK_SIZE = 10_000  # notifications per COPY transaction
WRITERS = 2  # connections copying at once, outside a transaction
PARALLEL_THRESHOLD = 20_000  # below this, generate inline (forking costs more than it saves)


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
    environments: int = 3,
    account: str | None = None,
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
    production", created or reused), or, with `account`, into every environment of that
    existing account (a "production" one is created if it has none), so its members see
    them in the console.

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
    envs = account_environments(account) if account else seed_environments(environments)
    _ensure_day_partitions(start, end)
    with _ReservedIds(notifications) as ids:
        plan = Plan(
            notifications=notifications,
            seed=seed,
            start_ms=_ms(start),
            end_ms=_ms(end),
            environment_ids=[env.id for env in envs],
            delivery_base=ids.delivery_base,
            event_base=ids.event_base,
            chunk_size=max(1, chunk_size),
            dictionary_ids=dictionaries_ids(
                (env.id, dictionary)
                for index, env in enumerate(envs)
                for dictionary in seed_dictionaries(index)
            ),
        )
        counter = _Counter(total=notifications, progress=progress)
        ids.counter = counter
        result = _load(plan, counter, parallel=parallel, writers=writers, analyze=analyze)
    log_rows_loaded.send(seed_logs, start=start, end=end, environment_ids=[env.id for env in envs])
    return _summary(envs, counter, result, start=start, end=end, started=started)


def seed_environments(count: int) -> list[Environment]:
    """ "Seed account 1 / production" … "Seed account N / production", created if missing."""
    envs = []
    for n in range(1, count + 1):
        account, _ = Account.objects.get_or_create(name=f"{SEED_ACCOUNT_PREFIX} {n}")
        envs.append(_production_environment(account))
    return envs


def account_environments(name: str) -> list[Environment]:
    """Every environment of the account called `name`; a "production" one is created when
    it has none. Raises Account.DoesNotExist, with what to do, for an unknown name."""
    account = Account.objects.filter(name=name).first()
    if account is None:
        raise Account.DoesNotExist(
            f"No account is called {name!r}: give the name of an existing account (the demo's "
            "is 'Demo', made by manage.py bootstrap_demo) or create one with "
            "manage.py create_environment --account NAME --name production."
        )
    envs = list(Environment.objects.filter(account=account).select_related("account"))
    return envs or [_production_environment(account)]


def _production_environment(account: Account) -> Environment:
    env = Environment.objects.filter(account=account, name=SEED_ENVIRONMENT_NAME).first()
    if env is None:
        env = environment_create(account=account, name=SEED_ENVIRONMENT_NAME).obj
    env.account = account
    return env


def _load(plan: Plan, counter: "_Counter", *, parallel, writers: int, analyze: bool) -> Result:
    """Generate and copy every chunk: through Django's connection inside a transaction, else
    by `writers` connections of their own, with the generator forked when it pays."""
    if parallel is None:
        parallel = plan.notifications >= PARALLEL_THRESHOLD
    parallel = parallel and "fork" in multiprocessing.get_all_start_methods()
    chunks = ForkedChunks(plan) if parallel else generate(plan)
    tables = ("logs_event", "logs_notification", "logs_delivery") if analyze else ()
    try:
        if connection.in_atomic_block or writers <= 1:
            return _load_serial(chunks, counter, tables)
        return _load_parallel(chunks, counter, tables, writers)
    finally:
        chunks.close()


def _summary(envs, counter: "_Counter", result: Result, *, start, end, started) -> SeedSummary:
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


class _ReservedIds:
    """Delivery and event ids drawn from the sequences in one block up front (the generator
    numbers rows itself). After a complete load the unused tail goes back if nobody drew ids
    meanwhile; after a failure nothing does (committed chunks may hold ids past the count)."""

    def __init__(self, notifications: int):
        self.deliveries = notifications * MAX_CHANNELS
        self.events = notifications * (1 + MAX_CHANNELS * MAX_EVENTS_PER_DELIVERY)
        self.counter: _Counter | None = None

    def __enter__(self) -> "_ReservedIds":
        with connection.cursor() as cursor:
            self.delivery_base = _reserve_ids(cursor, "logs_delivery_id_seq", self.deliveries)
            self.event_base = _reserve_ids(cursor, "logs_event_id_seq", self.events)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            return
        used_deliveries = self.counter.deliveries if self.counter else 0
        used_events = self.counter.events if self.counter else 0
        with connection.cursor() as cursor:
            _release_ids(
                cursor, "logs_delivery_id_seq", self.delivery_base, used_deliveries,
                self.deliveries,
            )  # fmt: skip
            _release_ids(cursor, "logs_event_id_seq", self.event_base, used_events, self.events)


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
    # A bulk load is maintenance: its COPYs and the closing VACUUM ANALYZE may outlast the
    # web requests' DATABASE_STATEMENT_TIMEOUT (a 1,000,000-row seed on a busy machine did).
    cursor.execute("SET statement_timeout = 0")
    changed = ["synchronous_commit", "statement_timeout"]
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


def _load_serial(chunks: Iterable, counter: _Counter, analyze: tuple[str, ...]) -> Result:
    """Everything through Django's connection (and the caller's transaction, if any)."""
    result = None
    with connection.cursor() as cursor:
        changed = _session_setup(cursor)
        try:
            for item in chunks:
                if isinstance(item, Result):
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
) -> Result:
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
            if isinstance(item, Result):
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


class ForkedChunks:
    """`generate` run in a forked child, iterated here through a pipe. The pipe's small
    buffer is the back-pressure: the child is at most one chunk ahead.

    The child is forked at once, before the caller starts any thread (forking a process
    with threads running can deadlock the child).
    """

    def __init__(self, plan: Plan):
        context = multiprocessing.get_context("fork")
        self.receiver, sender = context.Pipe(duplex=False)
        self.child = context.Process(target=_child_main, args=(plan, sender), daemon=True)
        self.child.start()
        sender.close()

    def __iter__(self) -> Iterator[Chunk | Result]:
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


def _child_main(plan: Plan, sender) -> None:
    # Forked: never touch the inherited database connection (the process ends with os._exit,
    # so nothing closes it behind the parent's back either).
    try:
        for item in generate(plan):
            if isinstance(item, Result):
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
