"""Alert rules (owners and admins manage, support and viewers read) and the alerts they
raised, firing and resolved, each with a link to the notifications that caused it.

A rule's webhook URL is a secret (a Slack incoming webhook posts to the channel for anyone who
has it): only those who manage the rule's account see it; support and viewers see its host."""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin import TenantScopedAdmin
from accounts.selectors import MANAGER_ROLES, account_list_for_user
from alerts.forms import AlertRuleForm
from alerts.links import alert_search_path
from alerts.models import Alert, AlertNotice, AlertRule
from logs.admin import ReadOnlyLogAdmin
from logs.console.masking import url_origin


@admin.register(AlertRule)
class AlertRuleAdmin(TenantScopedAdmin):
    environment_path = "environment"
    form = AlertRuleForm
    list_display = ["name", "environment", "kind", "enabled", "last_value", "evaluated_at"]
    list_filter = ["kind", "enabled"]
    list_select_related = ["environment__account"]
    readonly_fields = ["evaluated_at", "last_value", "clear_streak"]
    show_full_result_count = False

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None or self._manages(request, obj):
            return fields
        # Read-only for them anyway (has_change_permission): the display stands in for it.
        shown = ("webhook" if name == "webhook_url" else name for name in fields)
        return list(dict.fromkeys(shown))  # once, where the URL was

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is None or self._manages(request, obj):
            return readonly
        return [*readonly, "webhook"]

    @admin.display(description="Webhook URL")
    def webhook(self, rule: AlertRule) -> str:
        if not rule.webhook_url:
            return "—"
        return f"{url_origin(rule.webhook_url)} (only owners and admins see the whole URL)"

    def has_add_permission(self, request):
        # Only where the user may manage some account: support and viewers read.
        if not super().has_add_permission(request):
            return False
        return (
            request.user.is_superuser
            or account_list_for_user(user=request.user, roles=MANAGER_ROLES).exists()
        )


class AlertNoticeInline(admin.TabularInline):
    model = AlertNotice
    fields = ["transition", "channel", "state", "attempts", "last_error", "sent_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AlertStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("firing", "Firing"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() in ("firing", "resolved"):
            return queryset.filter(resolved_at__isnull=self.value() == "firing")
        return queryset


@admin.register(Alert)
class AlertAdmin(ReadOnlyLogAdmin):
    """Written by the evaluation only: read-only for everyone, like the log."""

    list_display = ["rule", "environment", "state", "fired_at", "resolved_at", "fired_value",
                    "caused_by"]  # fmt: skip
    list_filter = [AlertStateFilter]
    list_select_related = ["rule", "environment__account"]
    fields = ["rule", "environment", "fired_at", "resolved_at", "fired_value", "last_value",
              "summary", "window_start", "caused_by"]  # fmt: skip
    readonly_fields = fields
    inlines = [AlertNoticeInline]

    @admin.display(description="state")
    def state(self, alert: Alert) -> str:
        return "Resolved" if alert.resolved_at else "Firing"

    @admin.display(description="caused by")
    def caused_by(self, alert: Alert) -> str:
        path = alert_search_path(alert=alert, until=alert.resolved_at or timezone.now())
        return format_html('<a href="{}">Notifications</a>', path)
