"""Insights at scale: the insights page from hourly rollups, and what keeping them costs.

`insights.page` is one GET of the console's insights page (7 days, hourly charts and the
breakdown by type, rendered SVG included) as a superuser, for each seeded environment in
turn, at 1,000,000 notifications (goal: p95 under 150 ms); charts come from the chart cache
when their numbers have not changed since the last view. `insights.page_cold` empties that
cache before every call: the first view after a fold. Its baseline `insights.from_log`
computes the same counts from the log itself (what the page would cost without rollups).
The rollups of the seeded data come from `rollups_rebuild` (seed_logs writes with COPY, not
through event_record); its time is in the page row's note.

`insights.record_*` are notifications recorded per second (notification_create, Sent,
Failed - Bounce, all the same type, channel and hour: the hot row) by several threads:
without any rollup receiver (`record_none`, the baseline), with this project's receiver
appending deltas (`record_deltas`), and with a receiver that upserts the rollup row in the
recording transaction (`record_upsert`, the design the deltas replace).
"""

import threading
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from bench.harness import BenchmarkError, Measurement, Run, Scenario, register, time_calls
from bench.selectors import FULL, SMOKE, _seeded
from insights.models import COUNT_FIELDS
from insights.receivers import rollup_count_event
from insights.selectors import rollup_series
from insights.services import (
    COLUMN_BY_KIND,
    log_aggregate_sql,
    rollup_hour,
    rollup_template,
    rollups_fold,
    rollups_rebuild,
)
from logs.services import event_record, notification_create
from logs.signals import event_recorded

PAGE = "/admin/insights/hourlyrollup/"


def _rebuilt(run: Run, size: dict) -> tuple[list[int], float]:
    summary = _seeded(run, size)

    def rebuild() -> tuple[list[int], float]:
        start = time.perf_counter()
        for environment_id in summary.environment_ids:
            rollups_rebuild(environment_id=environment_id, since=summary.start - timedelta(hours=1))
        return summary.environment_ids, time.perf_counter() - start

    return run.once(("insights.rollups", *size.values()), rebuild)


@register
class InsightsFromLog(Scenario):
    name = "insights.from_log"
    baseline = None
    description = "the insights page's 7-day counts aggregated from the log (no rollups)"
    smoke_size = {**SMOKE, "page_repeat": 10}
    full_size = {**FULL, "repeat": 3, "page_repeat": 200}

    def setup(self, run: Run) -> None:
        self.environment_ids, self.rebuild_seconds = _rebuilt(run, self.size)

    def measure(self, run: Run) -> Measurement:
        since = timezone.now() - timedelta(days=7)
        sql = log_aggregate_sql(
            scope_sql="SELECT id, created_at, environment_id, notification_type, request "
            "FROM logs_notification WHERE environment_id = %(environment_id)s "
            "AND created_at >= %(since)s"
        )
        environments = iter(self.environment_ids * self.size["repeat"] * 2)

        def aggregate() -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    sql, {"environment_id": next(environments), "since": since, "template_max": 255}
                )
                cursor.fetchall()

        return time_calls(aggregate, repeat=self.size["repeat"], warmup=0)


@register
class InsightsPage(InsightsFromLog):
    name = "insights.page"
    baseline = "insights.from_log"
    description = "GET the insights page, 7 days hourly, at the seeded size (goal p95 < 150 ms)"

    def setup(self, run: Run) -> None:
        super().setup(run)
        user, _ = get_user_model().objects.get_or_create(
            username="bench-insights", defaults={"is_staff": True, "is_superuser": True}
        )
        self.client = Client()
        self.client.force_login(user)

    def _check(self, environment_id: int) -> None:
        response = self.client.get(PAGE, {"environment": environment_id, "period": "7d"})
        if response.status_code != 200:
            raise BenchmarkError(f"insights page answered {response.status_code}")
        end = rollup_hour(timezone.now()) + timedelta(hours=1)
        from accounts.models import Environment

        series = rollup_series(
            environment=Environment.objects.get(id=environment_id),
            start=end - timedelta(days=7),
            end=end,
            granularity="hour",
        )
        shown = f'<td data-count="sent">{series.total.sent}</td>'
        if series.total.sent == 0 or shown not in response.content.decode():
            raise BenchmarkError("the insights page does not show the rollups' sent total")

    def measure(self, run: Run) -> Measurement:
        for environment_id in self.environment_ids:
            self._check(environment_id)
        environments = iter(self.environment_ids * (self.size["page_repeat"] + 2))

        def get_page() -> None:
            self.client.get(PAGE, {"environment": next(environments), "period": "7d"})

        return time_calls(
            get_page,
            repeat=self.size["page_repeat"],
            note=f"rollups_rebuild of the seeded log: {self.rebuild_seconds:.1f} s",
        )


def _upsert_receiver(sender, *, notification, delivery, event, first_of_kind, **kwargs) -> None:
    # The design the deltas replace: one upsert of the shared rollup row per counted event
    # (counted by the same rule).
    column = COLUMN_BY_KIND.get(event.kind)
    if column is None or not first_of_kind:
        return
    ones = ", ".join("1" if name == column else "0" for name in COUNT_FIELDS)
    upsert = (
        "INSERT INTO insights_hourlyrollup (environment_id, hour, notification_type, channel, "  # noqa: S608
        f"template, {', '.join(COUNT_FIELDS)}) VALUES (%s, %s, %s, %s, %s, {ones}) "
        "ON CONFLICT (environment_id, hour, notification_type, channel, template) DO UPDATE "
        f"SET {column} = insights_hourlyrollup.{column} + 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            upsert,
            [
                notification.environment_id,
                rollup_hour(notification.created_at),
                notification.notification_type,
                event.channel,
                rollup_template(notification),
            ],
        )


@register
class RecordNone(Scenario):
    name = "insights.record_none"
    baseline = None
    description = "notifications recorded/s by concurrent threads, no rollup receiver"
    smoke_size = {"threads": 2, "per_thread": 10}
    full_size = {"threads": 8, "per_thread": 150}
    receiver = None

    def setup(self, run: Run) -> None:
        self.environment_id = _seeded(run, SMOKE if run.smoke else FULL).environment_ids[0]
        event_recorded.disconnect(dispatch_uid="insights.rollups")
        run.defer(event_recorded.connect, rollup_count_event, dispatch_uid="insights.rollups")
        if self.receiver is not None:
            event_recorded.connect(self.receiver, dispatch_uid="bench.insights.receiver")
            run.defer(event_recorded.disconnect, dispatch_uid="bench.insights.receiver")

    def _record(self, errors: list) -> None:
        try:
            for _ in range(self.size["per_thread"]):
                notification = notification_create(
                    environment_id=self.environment_id,
                    notification_type="bench_hot_row",
                    user_id="usr_bench",
                )
                for kind, sub_kind in (("sent", ""), ("failed", "bounce")):
                    event_record(
                        notification_id=notification.id,
                        notification_created_at=notification.created_at,
                        kind=kind,
                        sub_kind=sub_kind,
                        channel="email",
                        source="bench",
                    )
        except Exception as exc:  # reported as a benchmark error
            errors.append(exc)
        finally:
            connection.close()

    def measure(self, run: Run) -> Measurement:
        samples = []
        for _ in range(3):
            errors: list = []
            threads = [
                threading.Thread(target=self._record, args=(errors,))
                for _ in range(self.size["threads"])
            ]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=600)
            elapsed = time.perf_counter() - start
            if errors:
                raise BenchmarkError(f"recording failed: {errors[0]!r}")
            samples.append(self.size["threads"] * self.size["per_thread"] / elapsed)
        rollups_fold()
        return Measurement.from_samples(
            samples,
            "notifications/s",
            higher_is_better=True,
            note=f"{self.size['threads']} threads, one type/channel/hour",
        )


@register
class RecordDeltas(RecordNone):
    name = "insights.record_deltas"
    baseline = "insights.record_none"
    description = "the same, with the rollup receiver (a delta row per counted event)"
    receiver = staticmethod(rollup_count_event)


@register
class RecordUpsert(RecordNone):
    name = "insights.record_upsert"
    baseline = "insights.record_none"
    description = "the same, upserting the hot rollup row in the recording transaction"
    receiver = staticmethod(_upsert_receiver)


@register
class InsightsPageCold(InsightsPage):
    name = "insights.page_cold"
    baseline = "insights.from_log"
    description = "the same page with its chart cache emptied before each call (data just folded)"

    def measure(self, run: Run) -> Measurement:
        environments = iter(self.environment_ids * (self.size["page_repeat"] + 2))

        def get_page_cold() -> None:
            cache.clear()
            self.client.get(PAGE, {"environment": next(environments), "period": "7d"})

        return time_calls(get_page_cold, repeat=self.size["page_repeat"])
