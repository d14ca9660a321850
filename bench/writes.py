"""What recording events writes: how many row updates an event costs, how many of them are
heap-only (HOT: the new row version stays in its page and no index gets an entry), and how
many bytes the log's tables and indexes grow per event.

Each round makes `notifications` notifications of one day (a request and merge tags of a few
kB, as a real order email has), then records their lives the way the callbacks arrive: every
notification's Sending on email (with its rendered content, ~60 kB) and SMS, then every Sent,
then every Delivered, then an Opened on the email: 7 events each, through event_record (one
transaction each, as a callback's). The Sendings and Sents are the pipeline's, as dispatch
records them: since logs 0020 they are folded into the delivery's columns (logs/timeline.py),
so of the 7 events 3 write an event row (the Deliveries and the Opened, the providers'), and
the notification's Received (folded too) writes none. By then the notifications' pages are
full, as in production where a notification's events come seconds to minutes after it and
thousands of others. The figures are deltas over the event phase only, of the day's
partitions of the log tables: `pg_stat_user_tables` (n_tup_upd, n_tup_hot_upd; flushed with
pg_stat_force_next_flush, PostgreSQL 15+), pg_table_size (heap and TOAST) and
pg_indexes_size. (WAL is not measured: pg_current_wal_lsn counts the whole server's, and
PostgreSQL 15 keeps no count per backend.)

Rows: `write.hot_share` (% of the notification and delivery updates that were heap-only),
`write.updates_per_event`, `write.table_bytes_per_event`, `write.index_bytes_per_event`, and
`write.events_per_second`: how fast the event phase recorded them (event_record, one
transaction per event, one process; what a schema change costs the callbacks' writes).
"""

import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from django.db import connection
from django.utils import timezone

from bench.harness import BenchmarkError, Measurement, Run, Scenario, register
from logs.partitions import partition_create, partition_drop, partition_list, partition_name
from logs.services import event_record, notification_create

# A day of its own, far from every other scenario's.
_DAY_OFFSET = 90
_UPDATED = ("logs_notification", "logs_delivery")
_TABLES = (*_UPDATED, "logs_event")
_ITEMS = [{"sku": f"SKU-{n:05d}", "name": f"Item number {n}", "quantity": n % 3 + 1,
           "price": f"{n * 1.25:.2f}"} for n in range(40)]  # fmt: skip
# A rendered order email: ~60 kB of markup and words that compress about as real ones do
# (to a third), so it is stored out of line (TOAST) like theirs.
_WORDS = [f"{random.Random(n).getrandbits(40):x}" for n in range(2_000)]
_HTML = "".join(
    f'<tr><td class="item">{" ".join(random.Random(n).choices(_WORDS, k=8))}</td></tr>'
    for n in range(500)
)
_TEXT = "\n".join(f"{item['name']} x{item['quantity']} ${item['price']}" for item in _ITEMS)
# Each event's (kind, channel, sub_kind), in the order the phases record them.
_PHASES = [
    [("sending", "email", ""), ("sending", "sms", "")],
    [("sent", "email", ""), ("sent", "sms", "")],
    [("delivered", "email", ""), ("delivered", "sms", "")],
    [("engagement", "email", "opened")],
]
_EVENTS_PER_NOTIFICATION = sum(len(phase) for phase in _PHASES)


def _day() -> date:
    return timezone.now().astimezone(UTC).date() + timedelta(days=_DAY_OFFSET)


def _drop_day(day: date) -> None:
    for table in _TABLES:
        for partition in partition_list(table):
            if partition.is_day and partition.start.date() == day:
                partition_drop(partition)


def _said(kind: str, channel: str, number: int, n: int, created: datetime, seconds: int) -> dict:
    """The event as its source records it: the pipeline's Sending and Sent as dispatch does
    (notifications/sending.py), the rest as a provider's callback."""
    if kind == "sending":
        envelope = {"from": "shop@example.com"} if channel == "email" else None
        return {"source": "pipeline", "dedupe_key": f"sending:{channel}:1",
                "detail": "Attempt 1 of 3 via sandbox.", "payload": envelope}  # fmt: skip
    if kind == "sent":
        return {"source": "pipeline", "dedupe_key": f"sent:{channel}",
                "detail": "Accepted by sandbox."}  # fmt: skip
    return {"source": "sandbox", "occurred_at": created + timedelta(seconds=seconds),
            "provider_event_id": f"{kind}-{channel}-{number}-{n}",
            "payload": {"status": kind, "messageId": f"{channel}-{n}"}}  # fmt: skip


def _delivery_fields(kind: str, channel: str, n: int) -> dict | None:
    if kind == "sending" and channel == "email":
        return {"provider": "sandbox", "destination": f"user{n}@example.com",
                "subject": "Your order has shipped", "html": _HTML, "text": _TEXT}  # fmt: skip
    if kind == "sending":
        return {"provider": "sandbox", "destination": "+14155550100", "text": _TEXT[:300]}
    if kind == "sent":
        return {"provider_message_id": f"{channel}-{n}"}
    return None


class _Round(NamedTuple):
    """What one round recorded, and the counters' growth over its event phase."""

    events: int
    updates: int
    hot: int
    table_bytes: int
    index_bytes: int
    seconds: float


class _Figures:
    """The counters a round compares: updates, heap-only updates, table and index bytes."""

    def __init__(self, day: date) -> None:
        self.partitions = [partition_name(table, day) for table in _TABLES]
        self.updated = [partition_name(table, day) for table in _UPDATED]

    def read(self) -> tuple[int, int, int, int]:
        with connection.cursor() as cursor:
            # Our counters reach the shared statistics once this backend is idle again.
            cursor.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(0.05)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT coalesce(sum(n_tup_upd), 0), coalesce(sum(n_tup_hot_upd), 0) "
                "FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                [self.updated],
            )
            updates, hot = cursor.fetchone()
            cursor.execute(
                "SELECT sum(pg_table_size(name::regclass)), sum(pg_indexes_size(name::regclass)) "
                "FROM unnest(%s::text[]) name",
                [self.partitions],
            )
            table, indexes = cursor.fetchone()
        return int(updates), int(hot), int(table), int(indexes)


@register
class WriteHotShare(Scenario):
    name = "write"
    baseline = None
    description = "row updates (HOT share) and log bytes per event while recording events"
    smoke_size = {"notifications": 20, "rounds": 1}
    full_size = {"notifications": 1_000, "rounds": 3}

    def setup(self, run: Run) -> None:
        from accounts.models import Account
        from accounts.services import environment_create

        account, _ = Account.objects.get_or_create(name=f"Bench {self.name}")
        self.environment_id = environment_create(account=account, name="writes").obj.id
        self.day = _day()
        run.defer(_drop_day, self.day)
        partition_create(day=self.day)
        self.start = datetime.combine(self.day, datetime.min.time(), UTC)

    def _round(self, number: int) -> _Round:
        count = self.size["notifications"]
        notifications = [
            notification_create(
                environment_id=self.environment_id, notification_type="order_shipped",
                user_id=f"usr_{number}_{n}", email=f"user{n}@example.com", number="+14155550100",
                merge_tags={"items": _ITEMS, "order": n},
                request={"notificationId": "order_shipped", "templateId": "shipped_v2",
                         "user": {"id": f"usr_{number}_{n}"}, "mergeTags": {"items": _ITEMS}},
                created_at=self.start + timedelta(hours=number, microseconds=n),
            )
            for n in range(count)
        ]  # fmt: skip
        figures = _Figures(self.day)
        before = figures.read()
        events = 0
        started = time.perf_counter()
        for seconds, phase in enumerate(_PHASES, start=1):
            for n, notification in enumerate(notifications):
                for kind, channel, sub_kind in phase:
                    event_record(
                        notification_id=notification.id,
                        notification_created_at=notification.created_at,
                        kind=kind, channel=channel, sub_kind=sub_kind,
                        delivery_fields=_delivery_fields(kind, channel, n),
                        **_said(kind, channel, number, n, notification.created_at, seconds),
                    )  # fmt: skip
                    events += 1
        seconds = time.perf_counter() - started
        after = figures.read()
        growth = (now - then for now, then in zip(after, before, strict=True))
        return _Round(events, *growth, seconds)

    def measure(self, run: Run):
        rounds = [self._round(number) for number in range(self.size["rounds"])]
        self._check()
        share = [100 * r.hot / r.updates if r.updates else 0.0 for r in rounds]
        per_event = [r.updates / r.events for r in rounds]
        table = [r.table_bytes / r.events for r in rounds]
        indexes = [r.index_bytes / r.events for r in rounds]
        rate = [r.events / r.seconds for r in rounds]
        updates = sum(r.updates for r in rounds) / sum(r.events for r in rounds)
        note = f"{self.size['notifications']:,} notifications x {_EVENTS_PER_NOTIFICATION} events"
        return {
            "write.hot_share": Measurement.from_samples(
                share, "% HOT", higher_is_better=True,
                note=f"{updates * _EVENTS_PER_NOTIFICATION:.1f} updates/notification",
            ),
            "write.updates_per_event": Measurement.from_samples(
                per_event, "updates/event", note=note
            ),
            "write.table_bytes_per_event": Measurement.from_samples(
                table, "B/event", note="heap + TOAST"
            ),
            "write.index_bytes_per_event": Measurement.from_samples(indexes, "B/event"),
            "write.events_per_second": Measurement.from_samples(
                rate, "events/s", higher_is_better=True,
                note="event_record, one transaction per event, one process",
            ),
        }  # fmt: skip

    def _check(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE status = 'success'), count(*) "
                "FROM logs_notification WHERE environment_id = %s",
                [self.environment_id],
            )
            success, total = cursor.fetchone()
            cursor.execute(
                "SELECT count(*) FROM logs_delivery WHERE environment_id = %s "
                "AND channel = 'email' AND length(html) = %s AND state = 'delivered'",
                [self.environment_id, len(_HTML)],
            )
            emails = cursor.fetchone()[0]
        expected = self.size["notifications"] * self.size["rounds"]
        if (success, total, emails) != (expected, expected, expected):
            raise BenchmarkError(
                f"{success} of {total} notifications succeeded and {emails} emails kept their "
                f"content; expected {expected} of each"
            )
