"""The access audit in the console: owners and admins read their accounts' records, filtered by
person, user id and time, and export them as CSV. Support and viewers never see the page,
whatever Django permissions they hold: the role decides, as for every manager-only page."""

import csv
import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.urls import path

from accounts.selectors import MANAGER_ROLES, account_list_for_user, member_list_for_user
from audit.models import AccessRecord
from config.times import stamp, time_html, viewer_zone
from logs.admin import ReadOnlyLogAdmin
from logs.csv_cells import csv_row

MEMBERS_PERMISSION = "accounts.change_membership"
EXPORT_COLUMNS = ["at_utc", "person", "action", "tracking_id", "user_id", "filters", "rows",
                  "address", "user_agent", "account", "environment"]  # fmt: skip


class PersonFilter(admin.SimpleListFilter):
    """The members of the viewer's managed accounts; a record of someone who has since left
    is still found by its URL (?person=name)."""

    title = "person"
    parameter_name = "person"

    def lookups(self, request, model_admin):
        names = (
            member_list_for_user(user=request.user)
            .filter(memberships__account__in=model_admin.managed_accounts(request))
            .order_by("username")
            .values_list("username", flat=True)
            .distinct()
        )
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        return queryset.filter(actor_name=self.value()) if self.value() else queryset


class _Echo:
    def write(self, value):
        return value


@admin.register(AccessRecord)
class AccessRecordAdmin(ReadOnlyLogAdmin):
    list_select_related = ["environment__account"]
    list_filter = [PersonFilter, ("at", admin.DateFieldListFilter), "action"]
    search_fields = ["=user_id"]
    search_help_text = "A user id, exactly as your app sends it: every read of that user's data."
    change_list_template = "admin/audit/accessrecord/change_list.html"

    def managed_accounts(self, request):
        return account_list_for_user(user=request.user, roles=MANAGER_ROLES)

    def _reads_audit(self, request) -> bool:
        """Django's permission says whether the user may read the audit at all (the audit's
        own, or changing memberships as a stand-in, so the existing Account managers group
        needs no change, as for invitations); the role, where: owners and admins only. The
        permission is read from the user's cache, so support's pages pay no query for the
        audit's menu entry; a manager's pay one, once a request."""
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        if not (user.has_perm("audit.view_accessrecord") or user.has_perm(MEMBERS_PERMISSION)):
            return False
        if not hasattr(request, "_manages_an_account"):
            request._manages_an_account = self.managed_accounts(request).exists()
        return request._manages_an_account

    def has_module_permission(self, request):
        return self._reads_audit(request)

    def has_view_permission(self, request, obj=None):
        return self._reads_audit(request)

    def get_queryset(self, request):
        records = super().get_queryset(request)  # the user's environments
        if request.user.is_superuser:
            return records
        # Only the accounts the user owns or administers: support and viewers of an account
        # see none of its records, even where they manage another one.
        return records.filter(environment__account__in=self.managed_accounts(request))

    def get_list_display(self, request):
        # Times as on every console page: the viewer's zone, seconds, UTC on hover.
        zone = viewer_zone(request)

        @admin.display(description="at", ordering="at")
        def at(record: AccessRecord) -> str:
            return time_html(stamp(record.at, zone))

        return [at, "actor_name", "action", "what", "environment", "ip", "user_agent"]

    @admin.display(description="what")
    def what(self, record: AccessRecord) -> str:
        return record_what(record)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_export"
        view = self.admin_site.admin_view(self.export_view)
        return [path("export.csv", view, name=name), *super().get_urls()]

    def export_view(self, request):
        """The list as filtered, as CSV, every row (not only the page), newest first."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        records = self.get_changelist_instance(request).get_queryset(request)
        response = StreamingHttpResponse(_export_lines(records), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="access-audit.csv"'
        response["Cache-Control"] = "no-store"
        return response


def record_what(record: AccessRecord) -> str:
    """What was read, in one line: the tracking id, the user, or the export's filters."""
    parts = []
    if record.tracking_id:
        parts.append(f"notification {record.tracking_id}")
    if record.user_id:
        parts.append(f"user {record.user_id}")
    if record.filters is not None:
        shown = ", ".join(f"{k}={v}" for k, v in record.filters.items()) or "no filters"
        parts.append(f"search ({shown})")
    if record.row_count is not None:
        parts.append(f"{record.row_count} row(s)")
    return "; ".join(parts)


def _export_lines(records):
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for record in records.iterator(chunk_size=2000):
        filters = "" if record.filters is None else json.dumps(record.filters, sort_keys=True)
        yield writer.writerow(
            csv_row(
                [
                    record.at.isoformat(),
                    record.actor_name,
                    record.action,
                    record.tracking_id or "",
                    record.user_id,
                    filters,
                    "" if record.row_count is None else record.row_count,
                    record.ip or "",
                    record.user_agent,
                    record.environment.account.name,
                    record.environment.name,
                ]
            )
        )
