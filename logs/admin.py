"""What every admin of a log-like table shares: rows written elsewhere, never by hand, and a
paginator that never counts a log table. The Notification admin, the support console, is in
console/admin.py; deliveries and events are shown on its notification page only (masked
there), so they have no admin of their own."""

import json
from functools import cached_property

from django.core.paginator import Paginator

from accounts.admin.bases import TenantScopedAdmin


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
    audit of reveals in console/admin.py, the webhook inbox in webhooks/admin.py)."""

    show_full_result_count = False
    list_per_page = 50
    paginator = EstimatedCountPaginator
    environment_path = "environment"
