"""Alert evaluation at scale: one pass of `alert_rules_evaluate` over 100 rules (goal: under
1 s) with the counters of 1,000,000 seeded notifications.

The data: the same `seed_logs` run as the search scenarios (1,000,000 notifications over 7
days in 3 environments at full size, shared through run.once). seed_logs writes with COPY,
so no event_recorded receiver ran: setup builds the per-minute counters from the seeded
events in one INSERT … SELECT (what the receiver would have written, event by event), about
a hundred notifications a minute. Each timed call is one beat pass at the next minute of the
seeded period's last hour, where every window is full. The rules mix the three kinds, types
and channels, with windows of 5 to 60 minutes, and have no recipients (no notice leaves).
"""

import itertools
from datetime import timedelta

from django.db import connection

from alerts.counting import SHARDS
from alerts.evaluation import alert_rules_evaluate
from alerts.models import Alert, AlertRule, MinuteCount
from alerts.selectors import environment_count_rows, window_counts, window_start
from alerts.vocabulary import RuleKind
from bench.harness import BenchmarkError, Measurement, Run, Scenario, register, time_calls
from bench.selectors import _seeded  # the same seeded data, shared through run.once
from config.db import statement_timeout_lifted
from logs.models import Event

SMOKE = {"notifications": 4_000, "days": 3, "environments": 2, "rules": 100, "repeat": 5}
FULL = {"notifications": 1_000_000, "days": 7, "environments": 3, "rules": 100, "repeat": 30}

_COUNTS_FROM_EVENTS = f"""
INSERT INTO alerts_minutecount
    (environment_id, minute, notification_type, channel, kind, sub_kind, shard, count)
SELECT e.environment_id, date_trunc('minute', e.recorded_at), n.notification_type, e.channel,
       e.kind, e.sub_kind, abs(hashtext(e.notification_id::text)) % {SHARDS}, count(*)
FROM logs_event e
JOIN logs_notification n
  ON n.id = e.notification_id AND n.created_at = e.notification_created_at
 AND n.environment_id = e.environment_id
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""  # noqa: S608 (a constant)

_KINDS = [
    {"kind": RuleKind.FAILURE_RATE, "threshold_percent": 5, "min_notifications": 10},
    {"kind": RuleKind.EVENT_COUNT, "event": "failed:bounce", "max_events": 3},
    {"kind": RuleKind.DELIVERY_SILENCE, "channel": "sms", "min_notifications": 5},
    {"kind": RuleKind.FAILURE_RATE, "channel": "email", "threshold_percent": 50,
     "min_notifications": 10},
]  # fmt: skip


def _counts_build() -> int:
    MinuteCount.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(_COUNTS_FROM_EVENTS)
        cursor.execute("ANALYZE alerts_minutecount")
    return MinuteCount.objects.count()


@register
class AlertsEvaluate(Scenario):
    name = "alerts.evaluate"
    baseline = None
    description = "one beat pass of alert evaluation over 100 rules at 1,000,000 notifications"
    smoke_size = SMOKE
    full_size = FULL

    def setup(self, run: Run) -> None:
        summary = _seeded(run, self.size)
        # Building counters from 5M seeded events is a backfill, longer than a web request's
        # statement_timeout; the evaluation measured below runs under the usual one.
        with statement_timeout_lifted():
            self.counter_rows = run.once(("alerts.counts", summary.notifications), _counts_build)
        types = sorted({t for s in summary.samples.values() for t in s.notification_types})
        self.rules = [
            AlertRule.objects.create(
                environment_id=summary.environment_ids[n % len(summary.environment_ids)],
                name=f"bench rule {n}",
                window_minutes=(5, 10, 30, 60)[n % 4],
                notification_type=types[n % len(types)] if n % 3 == 0 and types else "",
                **_KINDS[n % len(_KINDS)],
            )
            for n in range(self.size["rules"])
        ]
        run.defer(self._cleanup)
        with statement_timeout_lifted():  # both read the seeded log without an index
            last = Event.objects.order_by("-recorded_at").values_list("recorded_at", flat=True)[0]
            self.minutes = itertools.count()
            self.first = last.replace(second=0, microsecond=0) - timedelta(minutes=59)
            self._check_against_the_log()

    def _cleanup(self) -> None:
        Alert.objects.filter(rule__in=self.rules).delete()
        AlertRule.objects.filter(id__in=[r.id for r in self.rules]).delete()

    def _check_against_the_log(self) -> None:
        """A wrong answer fast must fail: the counters' window equals a count of the log."""
        rule = next(r for r in self.rules if r.kind == RuleKind.FAILURE_RATE and not r.channel)
        now = self.first + timedelta(minutes=59)
        since = window_start(now=now, minutes=rule.window_minutes)
        rows = environment_count_rows(environment_id=rule.environment_id, starts={since})
        counts = window_counts(rule=rule, rows=rows, since=since)
        events = Event.objects.filter(environment_id=rule.environment_id, recorded_at__gte=since)
        if rule.notification_type:
            events = events.filter(notification__notification_type=rule.notification_type)
        in_log = events.filter(kind="delivered").count()
        if counts.delivered != in_log:
            raise BenchmarkError(f"counters say {counts.delivered} Delivered, the log {in_log}")

    def measure(self, run: Run):
        def call():
            now = self.first + timedelta(minutes=next(self.minutes))
            outcomes = alert_rules_evaluate(now=now)
            if outcomes.get("skipped") or sum(outcomes.values()) != len(self.rules):
                raise BenchmarkError(f"a pass did not evaluate every rule: {dict(outcomes)}")

        return time_calls(
            call,
            repeat=self.size["repeat"],
            note=f"{len(self.rules)} rules, {self.counter_rows:,} counter rows",
        )


def _record_burst(environment_id: int, count: int) -> None:
    """`count` notifications, each Received then Sent on email: every event of every thread
    increments the counters of the same (environment, minute, type, channel, kind)."""
    from django.db import connection as thread_connection

    from logs.services import event_record, notification_create

    try:
        for n in range(count):
            notification = notification_create(
                environment_id=environment_id,
                notification_type="bench_burst",
                user_id=f"usr_{n}",
                email="bench@example.com",
            )
            event_record(
                notification_id=notification.id,
                notification_created_at=notification.created_at,
                kind="sent",
                channel="email",
                source="pipeline",
            )
    finally:
        thread_connection.close()


@register
class AlertsCountOneRow(Scenario):
    """What the counters' shard is for: events recorded per second by concurrent writers
    when every increment hits one row (SHARDS = 1) ..."""

    name = "alerts.count_one_row"
    baseline = "alerts.count_none"
    description = "events/s recorded by 4 threads, alert counters on one hot row"
    smoke_size = {"threads": 4, "per_thread": 50, "repeat": 3}
    full_size = {"threads": 4, "per_thread": 300, "repeat": 5}
    shards = 1

    def setup(self, run: Run) -> None:
        from accounts.models import Account
        from accounts.services import environment_create

        account, _ = Account.objects.get_or_create(name=f"Bench {self.name}")
        self.environment_id = environment_create(account=account, name="burst").obj.id

    def measure(self, run: Run):
        import threading
        import time

        from alerts import counting
        from logs.signals import event_recorded

        size, samples = self.size, []
        previous, counting.SHARDS = counting.SHARDS, self.shards or 1
        if not self.shards:
            event_recorded.disconnect(dispatch_uid="alerts.count_event")
        try:
            for _ in range(size["repeat"]):
                threads = [
                    threading.Thread(
                        target=_record_burst, args=(self.environment_id, size["per_thread"])
                    )
                    for _ in range(size["threads"])
                ]
                started = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=300)
                elapsed = time.perf_counter() - started
                samples.append(2 * size["threads"] * size["per_thread"] / elapsed)
        finally:
            counting.SHARDS = previous
            event_recorded.connect(counting.count_event, dispatch_uid="alerts.count_event")
        if not self.shards:
            return Measurement.from_samples(
                samples, "events/s", higher_is_better=True, note="no alert counters"
            )
        counted = MinuteCount.objects.filter(environment_id=self.environment_id)
        total = sum(counted.values_list("count", flat=True))
        expected = 2 * size["threads"] * size["per_thread"] * size["repeat"]
        if total != expected:
            raise BenchmarkError(f"counters hold {total} events, {expected} were recorded")
        return Measurement.from_samples(
            samples, "events/s", higher_is_better=True, note=f"{self.shards} shard(s)"
        )


@register
class AlertsCountSharded(AlertsCountOneRow):
    """... against the shipped SHARDS rows per key."""

    name = "alerts.count_sharded"
    baseline = "alerts.count_none"
    description = "events/s recorded by 4 threads, alert counters sharded"
    shards = SHARDS


@register
class AlertsCountNone(AlertsCountOneRow):
    """... and without the counters at all (the receiver disconnected): their cost."""

    name = "alerts.count_none"
    baseline = None
    description = "events/s recorded by 4 threads, no alert counters"
    shards = 0
