"""The support console, inside Django's admin.

The Notification admin's list and change pages are the console's search and notification
pages (logs/console/), with the user's timeline, the live timeline feed, reveal and export
beside them. Deliveries and events are shown on the notification page only (masked there), so
they have no admin of their own. Rows are written by the API, the pipeline and provider
callbacks, never by hand.
"""

import json
from functools import cached_property, partial

from django.contrib import admin
from django.core.paginator import Paginator
from django.urls import path

from accounts.admin import TenantScopedAdmin
from logs.console import views
from logs.console.models import ConsoleSettings, RevealRecord
from logs.console.presenting import stamp, time_html, viewer_zone
from logs.models import Notification


class WrittenElsewhere:
    """Rows written by the log's services or the console itself, never by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EstimatedCountPaginator(Paginator):
    """Never COUNT(*)s a log table: counts exactly up to EXACT_UP_TO rows (one short index
    scan), and beyond that takes PostgreSQL's planner estimate for the page links."""

    EXACT_UP_TO = 1000

    @cached_property
    def count(self) -> int:
        exact = len(self.object_list.values("pk")[: self.EXACT_UP_TO + 1])
        if exact <= self.EXACT_UP_TO:
            return exact
        plan = self.object_list.explain(format="json")
        estimate = int(json.loads(plan)[0]["Plan"]["Plan Rows"])
        return max(estimate, exact)


class ReadOnlyLogAdmin(WrittenElsewhere, TenantScopedAdmin):
    """Read-only, tenant-scoped, never counted: the base for log-like tables (the console's
    audit here, the webhook inbox in webhooks/admin.py)."""

    show_full_result_count = False
    list_per_page = 50
    paginator = EstimatedCountPaginator
    environment_path = "environment"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyLogAdmin):
    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(partial(function, admin=self))

        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("", view(views.search_view), name=f"{name}_changelist"),
            path("user/", view(views.user_timeline_view), name=f"{name}_user"),
            path("user/erase/", view(views.erase_view), name=f"{name}_erase"),
            path("export.csv", view(views.export_view), name=f"{name}_export"),
            path("<path:object_id>/change/", view(views.notification_view), name=f"{name}_change"),
            path("<path:object_id>/events.json", view(views.events_view), name=f"{name}_events"),
            path("<path:object_id>/reveal/", view(views.reveal_view), name=f"{name}_reveal"),
            path("<path:object_id>/resend/", view(views.resend_view), name=f"{name}_resend"),
            *super().get_urls(),
        ]


@admin.register(ConsoleSettings)
class ConsoleSettingsAdmin(TenantScopedAdmin):
    """Owners and admins choose, per environment, which field names hold secrets."""

    environment_path = "environment"
    list_display = ["environment", "sensitive_words"]


@admin.register(RevealRecord)
class RevealRecordAdmin(ReadOnlyLogAdmin):
    """Who revealed which notification's masked values, and when. Written by the console only."""

    list_select_related = ["environment__account"]

    def get_list_display(self, request):
        # Times as on every console page: the viewer's zone, seconds, UTC on hover.
        zone = viewer_zone(request)

        @admin.display(description="revealed at", ordering="revealed_at")
        def revealed_at(record: RevealRecord) -> str:
            return time_html(stamp(record.revealed_at, zone))

        return [revealed_at, "username", "notification_id", "environment"]
