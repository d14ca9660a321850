"""The support console through Django's test client, as a logged-in support user, next to
Django's default admin for the same search in the same run (plain `search_fields`, the
default paginator with its COUNTs): the list searched by email, by user id and by tracking
id, and the notification page. Goal (issue 9): p95 under 100 ms each, at least 10x the
default admin, at 1,000,000 notifications.

The data is bench/selectors.py's seed (the same run.once key, so one seed serves both).
"""

import itertools
import random

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.test.utils import override_settings
from django.urls import path

from accounts.models import Environment, Membership
from accounts.selectors import environment_list_for_user
from bench.harness import BenchmarkError, Run, Scenario, register, time_calls
from bench.selectors import FULL, SEARCH_FIELDS, SMOKE, _seeded
from bench.urls import urlpatterns as bench_urlpatterns
from logs.models import Notification


class DefaultNotificationAdmin(admin.ModelAdmin):
    """What a plain admin for the log would be: search fields, the default paginator, and
    the project's tenant rule so it shows the same rows."""

    search_fields = SEARCH_FIELDS
    list_display = ["id", "notification_type", "user_id", "email", "number", "status",
                    "created_at"]  # fmt: skip

    def get_queryset(self, request):
        environments = environment_list_for_user(user=request.user)
        return super().get_queryset(request).filter(environment__in=environments)


default_site = admin.AdminSite(name="default_admin")
default_site.register(Notification, DefaultNotificationAdmin)
# This module is the URLconf while a scenario measures (override_settings below).
urlpatterns = [path("default-admin/", default_site.urls), *bench_urlpatterns]

CONSOLE = "/admin/logs/notification/"
DEFAULT = "/default-admin/logs/notification/"


def _support_client(environment_id: int) -> Client:
    account = Environment.objects.select_related("account").get(id=environment_id).account
    user, _ = get_user_model().objects.get_or_create(
        username=f"bench-support-{account.id}", defaults={"is_staff": True}
    )
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["logs", "notifications"], codename__startswith="view_"
        )
    )
    Membership.objects.get_or_create(
        user=user, account=account, defaults={"role": Membership.Role.SUPPORT}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


class _ConsoleScenario(Scenario):
    smoke_size = SMOKE
    full_size = FULL
    sample = "emails"  # EnvironmentSample attribute
    base = CONSOLE

    def setup(self, run: Run) -> None:
        summary = _seeded(run, self.size)
        self.environment_id = summary.environment_ids[0]
        values = list(getattr(summary.samples[self.environment_id], self.sample))
        if not values:
            raise BenchmarkError(f"{self.name}: the seed gave no {self.sample} to search by")
        random.Random(self.name).shuffle(values)
        self.values = itertools.cycle(values)
        self.client = _support_client(self.environment_id)

    def url(self, value: str) -> tuple[str, dict]:
        return self.base, {"q": value, "environment": self.environment_id}

    def call(self) -> None:
        value = str(next(self.values))
        url, params = self.url(value)
        response = self.client.get(url, params)
        body = response.content.decode()
        if response.status_code != 200:
            raise BenchmarkError(f"{self.name}: {url} answered {response.status_code}")
        if value.lower() not in body.lower():
            raise BenchmarkError(f"{self.name}: the page does not show the seeded {value!r}")

    def measure(self, run: Run):
        repeat = self.size["naive_repeat" if self.base == DEFAULT else "repeat"]
        with override_settings(ROOT_URLCONF=__name__):
            return time_calls(self.call, repeat=repeat, note=self.note)

    note = "console list, test client, support user"


class _NotificationPage(_ConsoleScenario):
    sample = "tracking_ids"
    note = "notification page, test client, support user"

    def url(self, value: str) -> tuple[str, dict]:
        return f"{self.base}{value}/change/", {}


def _pair(key: str, sample: str, page: bool = False) -> None:
    parent = _NotificationPage if page else _ConsoleScenario
    what = "the notification page" if page else f"the list searched by {key}"
    register(type(f"Default_{key}", (parent,), {
        "name": f"admin_default.{key}", "sample": sample, "base": DEFAULT,
        "note": "default admin: search_fields, default paginator",
        "description": f"Django's default admin: {what}",
    }))  # fmt: skip
    register(type(f"Console_{key}", (parent,), {
        "name": f"console.{key}", "sample": sample, "baseline": f"admin_default.{key}",
        "description": f"the support console: {what}",
    }))  # fmt: skip


_pair("email", "emails")
_pair("user_id", "user_ids")
_pair("tracking_id", "tracking_ids")
_pair("notification_page", "tracking_ids", page=True)
