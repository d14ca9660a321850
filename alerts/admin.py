"""Alert rules (owners and admins manage, support and viewers read) and the alerts they
raised, firing and resolved, each with a link to the notifications that caused it.

A rule's webhook URL is a secret (a Slack incoming webhook posts to the channel for anyone who
has it): only those who manage the rule's account see it; support and viewers see its host."""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin.bases import TenantScopedAdmin
from accounts.selectors import MANAGER_ROLES, account_list_for_user
from alerts.forms import AlertRuleForm
from alerts.links import alert_search_path
from alerts.models import Alert, AlertNotice, AlertRule
from alerts.vocabulary import RuleKind
from logs.admin import ReadOnlyLogAdmin
from logs.masking import url_origin
from logs.vocabulary import event_label


def reading_text(rule: AlertRule, value: float | None, *, fired: bool = False) -> str:
    """A rule's reading in words: "33.3%" for a failure rate, "4 Failed - Bounce" for an
    event count, "12 Sent, none Delivered" for a silence that fired; never a bare float
    ("4.0"). The evaluation stores percentages and counts alike as floats (conditions.Reading).
    """
    if value is None:
        return "—"
    if rule.kind == RuleKind.FAILURE_RATE:
        return f"{value:.1f}".removesuffix(".0") + "%"
    count = round(value)  # a count, stored as a float
    if rule.kind == RuleKind.EVENT_COUNT:
        label = event_label(rule.event_kind, rule.event_sub_kind) if rule.event else "events"
        return f"{count} {label}"
    if rule.kind == RuleKind.DELIVERY_SILENCE and fired:
        # What fired it: sends went on (this many Sent) and nothing was Delivered.
        return f"{count} Sent, none Delivered"
    return str(count)


@admin.register(AlertRule)
class AlertRuleAdmin(TenantScopedAdmin):
    environment_path = "environment"
    form = AlertRuleForm
    list_display = ["name", "environment", "kind", "enabled", "last_reading", "evaluated_at"]
    list_filter = ["kind", "enabled"]
    list_select_related = ["environment__account"]
    readonly_fields = ["evaluated_at", "last_reading", "clear_evaluations"]
    show_full_result_count = False

    @admin.display(description="last reading", ordering="last_value")
    def last_reading(self, rule: AlertRule) -> str:
        return reading_text(rule, rule.last_value)

    @admin.display(description="clear evaluations in a row")
    def clear_evaluations(self, rule: AlertRule) -> str:
        # A firing alert resolves after RESOLVE_AFTER_CLEAR_EVALUATIONS of them.
        return str(rule.clear_streak)

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

    list_display = ["rule", "environment", "state", "fired_at", "resolved_at", "fired_reading",
                    "caused_by"]  # fmt: skip
    list_filter = [AlertStateFilter]
    list_select_related = ["rule", "environment__account"]
    fields = ["rule", "environment", "fired_at", "resolved_at", "fired_reading", "last_reading",
              "summary", "window_start", "caused_by"]  # fmt: skip
    readonly_fields = fields
    inlines = [AlertNoticeInline]

    @admin.display(description="fired at reading", ordering="fired_value")
    def fired_reading(self, alert: Alert) -> str:
        return reading_text(alert.rule, alert.fired_value, fired=True)

    @admin.display(description="last reading")
    def last_reading(self, alert: Alert) -> str:
        return reading_text(alert.rule, alert.last_value, fired=alert.resolved_at is None)

    @admin.display(description="state")
    def state(self, alert: Alert) -> str:
        return "Resolved" if alert.resolved_at else "Firing"

    @admin.display(description="caused by")
    def caused_by(self, alert: Alert) -> str:
        path = alert_search_path(alert=alert, until=alert.resolved_at or timezone.now())
        return format_html('<a href="{}">Notifications</a>', path)
