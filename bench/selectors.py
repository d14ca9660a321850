"""Support search at scale: every selector of logs/selectors.py next to the query Django's
admin would run for the same search.

The data: `seed_logs` (demo/loader.py), 1,000,000 notifications over 7 days in 3 environments
at full size (shared by every row through run.once). Each `search.X` row times one page (50
rows) of `notification_page` for values drawn from the seeded data, rotating so no two calls
in a row hit the same rows; its baseline `naive.X` is the admin's default changelist for the
same search on the same tables, as the issue defines it: the term typed into the search box
(`icontains` over the search fields, OR'ed; type and status included), or for channel and
event filters the list filter's exact match through a join; then the filtered COUNT(*), the
full COUNT(*) of the tenant's rows, and the first page of 100 by OFFSET. (An exact list filter
on type or status would use this project's own composite index for its COUNT and run about
20x slower than the selector rather than 400x: the gap there is the two COUNTs.)
"""

import contextlib
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from django.db import ProgrammingError, connection
from django.db.models import Exists, OuterRef, Q

from bench.harness import BenchmarkError, Run, Scenario, register, time_calls
from config.db import statement_timeout_lifted
from demo.loader import SeedSummary, seed_logs
from logs.models import Delivery, Event, Notification
from logs.search_filters import NotificationFilters
from logs.selectors import notification_page

# The search fields a plain admin for this table would have.
SEARCH_FIELDS = ["id", "user_id", "email", "number", "notification_type", "status"]
SMOKE = {"notifications": 4_000, "days": 3, "environments": 2, "repeat": 5, "naive_repeat": 2}
FULL = {"notifications": 1_000_000, "days": 7, "environments": 3, "repeat": 60, "naive_repeat": 5}


def _seeded(run: Run, size: dict) -> SeedSummary:
    key = ("logs", size["notifications"], size["days"], size["environments"])

    def seed() -> SeedSummary:
        summary = seed_logs(
            notifications=size["notifications"],
            days=size["days"],
            environments=size["environments"],
        )
        # The load leaves its pages and WAL to the checkpointer, which writes them out over
        # the next minutes (at full size, one checkpoint of 171 s): write them now, untimed,
        # or the scenarios after it measure that I/O as much as themselves.
        # Not a superuser nor pg_checkpoint: left to the server.
        with connection.cursor() as cursor, contextlib.suppress(ProgrammingError):
            cursor.execute("CHECKPOINT")
        return summary

    return run.once(key, seed)


@dataclass(frozen=True)
class Search:
    """One kind of support search: how to build its filters from a seeded value, which values
    must be found, and what the admin would run instead."""

    name: str
    values: Callable[[SeedSummary, int], list]
    filters: Callable[[object], NotificationFilters]
    naive: Callable[[object], Q]  # the admin's WHERE for the same search
    must_find: bool = True


def _search_q(term: str) -> Q:
    # Django admin's default search: every search field icontains the term, OR'ed.
    q = Q()
    for field in SEARCH_FIELDS:
        q |= Q(**{f"{field}__icontains": term})
    return q


def _related(model, **lookups) -> Q:
    # The admin's list filter over a reverse relation: EXISTS on the related rows, joined on
    # the notification id alone (it knows nothing of partitions).
    return Q(Exists(model.objects.filter(notification_id=OuterRef("pk"), **lookups)))


def _sample(attribute: str) -> Callable[[SeedSummary, int], list]:
    return lambda summary, env: list(getattr(summary.samples[env], attribute))


def _constant(*values) -> Callable[[SeedSummary, int], list]:
    return lambda summary, env: list(values)


SEARCHES = [
    Search(
        "tracking_id",
        _sample("tracking_ids"),
        lambda v: NotificationFilters(tracking_ids=[v]),
        lambda v: _search_q(str(v)),
    ),
    Search(
        "user_id",
        _sample("user_ids"),
        lambda v: NotificationFilters(user_ids=[v]),
        _search_q,
    ),
    Search(
        "email",
        _sample("emails"),
        lambda v: NotificationFilters(email=v.upper()),
        _search_q,
    ),
    Search(
        "email_prefix",
        lambda summary, env: [e[:8] for e in summary.samples[env].emails],
        lambda v: NotificationFilters(email_prefix=v),
        _search_q,
    ),
    Search(
        "number",
        _sample("numbers"),
        lambda v: NotificationFilters(number=v),
        _search_q,
    ),
    Search(
        "provider_message_id",
        _sample("provider_message_ids"),
        lambda v: NotificationFilters(provider_message_id=v),
        lambda v: _search_q(v) | _related(Delivery, provider_message_id__icontains=v),
    ),
    Search(
        "type",
        _sample("notification_types"),
        lambda v: NotificationFilters(notification_types=[v]),
        _search_q,
    ),
    Search(
        "status",
        _constant("failure", "success", "received"),
        lambda v: NotificationFilters(statuses=[v]),
        _search_q,
        must_find=False,
    ),
    Search(
        "channel",
        _constant("sms", "call", "email", "in_app"),
        lambda v: NotificationFilters(channels=[v]),
        lambda v: _related(Delivery, channel=v),
        must_find=False,
    ),
    Search(
        "two_channels",
        _constant(("sms", "call"), ("email", "in_app"), ("sms", "email")),
        lambda v: NotificationFilters(channels=list(v)),
        lambda v: _related(Delivery, channel__in=list(v)),
        must_find=False,
    ),
    Search(
        "event_sub_kind",
        _constant("bounce", "undelivered", "no_answer", "complained"),
        lambda v: NotificationFilters(event_sub_kind=v),
        lambda v: _related(Event, sub_kind=v),
        must_find=False,
    ),
    Search(
        "event_kind",
        _constant("failed", "ignored", "engagement"),
        lambda v: NotificationFilters(event_kind=v),
        lambda v: _related(Event, kind=v),
        must_find=False,
    ),
]


class _SearchScenario(Scenario):
    search: Search
    smoke_size = SMOKE
    full_size = FULL

    def setup(self, run: Run) -> None:
        self.summary = _seeded(run, self.size)
        self.environment_id = self.summary.environment_ids[0]
        values = self.search.values(self.summary, self.environment_id)
        if not values:
            raise BenchmarkError(f"the seed gave no values to search by {self.search.name}")
        random.Random(self.name).shuffle(values)
        self.values = itertools.cycle(values)


class _Indexed(_SearchScenario):
    def measure(self, run: Run):
        def call():
            value = next(self.values)
            page = notification_page(
                environment_id=self.environment_id, filters=self.search.filters(value), limit=50
            )
            if self.search.must_find and not page.notifications:
                raise BenchmarkError(f"{self.name}: nothing found for a seeded value {value!r}")
            if any(n.environment_id != self.environment_id for n in page.notifications):
                raise BenchmarkError(f"{self.name}: another tenant's notification was returned")

        return time_calls(call, repeat=self.size["repeat"], note="one page of 50, keyset")


class _Naive(_SearchScenario):
    def measure(self, run: Run):
        tenant = Notification.objects.filter(environment_id=self.environment_id)

        def call():
            filtered = tenant.filter(self.search.naive(next(self.values)))
            # The admin's scans of every row outlast the 30 s statement timeout at
            # 10,000,000 notifications (`--scale 10m`): measured to the end, as a user waits.
            with statement_timeout_lifted():
                filtered.count()
                tenant.count()
                list(filtered.order_by("-created_at", "-id")[:100])

        return time_calls(
            call, repeat=self.size["naive_repeat"], note="admin: search/filter, 2 COUNTs, page"
        )


for search in SEARCHES:
    register(
        type(
            f"Naive_{search.name}",
            (_Naive,),
            {
                "name": f"naive.{search.name}",
                "search": search,
                "description": f"Django admin's default changelist searching {search.name}",
            },
        )
    )
    register(
        type(
            f"Search_{search.name}",
            (_Indexed,),
            {
                "name": f"search.{search.name}",
                "baseline": f"naive.{search.name}",
                "search": search,
                "description": f"logs.selectors.notification_page by {search.name}",
            },
        )
    )


@register
class NaiveDeepPage(_SearchScenario):
    name = "naive.page_20"
    description = "the admin's 20th page of the newest notifications: OFFSET and two COUNTs"
    search = SEARCHES[0]

    def measure(self, run: Run):
        tenant = Notification.objects.filter(environment_id=self.environment_id)

        def call():
            with statement_timeout_lifted():  # as the naive searches above
                tenant.count()
                list(tenant.order_by("-created_at", "-id")[1900:2000])

        return time_calls(call, repeat=self.size["naive_repeat"], note="OFFSET 1900")


@register
class DeepPage(_SearchScenario):
    name = "search.page_20"
    baseline = "naive.page_20"
    description = "the 20th page of the newest notifications, by keyset cursor"
    search = SEARCHES[0]

    def measure(self, run: Run):
        first = notification_page(environment_id=self.environment_id, limit=100)
        cursor = first.next_cursor
        # Walk to page 19 once (untimed) and time fetching page 20 from its cursor.
        for _ in range(18):
            if cursor is None:
                break
            cursor = notification_page(
                environment_id=self.environment_id, after=cursor, limit=100
            ).next_cursor
        if cursor is None and not run.smoke:
            raise BenchmarkError("fewer than 20 pages of notifications were seeded")

        def call():
            notification_page(environment_id=self.environment_id, after=cursor, limit=100)

        return time_calls(call, repeat=self.size["repeat"], note="keyset cursor, no COUNT")
