"""Read-only registration of the log tables. Rows are written by the API, the pipeline and
provider callbacks, never by hand. Lists are narrowed to the user's environments and never
count the table (show_full_result_count = False)."""

import json
from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator

from accounts.admin import TenantScopedAdmin
from logs.models import Delivery, Event, Notification


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


class ReadOnlyLogAdmin(TenantScopedAdmin):
    show_full_result_count = False
    list_per_page = 50
    paginator = EstimatedCountPaginator
    environment_path = "environment"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyLogAdmin):
    list_display = ["id", "notification_type", "user_id", "status", "created_at"]
    list_filter = ["status"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyLogAdmin):
    list_display = ["notification_id", "channel", "state", "state_detail", "provider",
                    "provider_message_id", "notification_created_at"]  # fmt: skip
    list_filter = ["channel", "state"]


@admin.register(Event)
class EventAdmin(ReadOnlyLogAdmin):
    list_display = ["notification_id", "label", "channel", "occurred_at", "source"]
    list_filter = ["kind", "sub_kind"]
