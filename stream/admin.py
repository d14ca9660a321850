"""Console pages of the outbound event stream (subscriptions, messages with every attempt,
replay) and of the retention purge runs.

A subscription's URL may carry its receiver's secret (a token in the path or query): only those
who manage its account see it; support and viewers see its scheme and host, in the list, on the
page and in the notices of disabled subscribers."""

from django.contrib import admin, messages
from django.db.models import BooleanField, Exists, OuterRef, Prefetch, Value
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin.bases import ShowsSecretOnce, TenantScopedAdmin
from accounts.crypto import secret_encrypt
from accounts.models import Membership
from accounts.selectors import MANAGER_ROLES, environment_list_for_user
from config.admin_display import moment_text
from logs.admin import ReadOnlyLogAdmin, WrittenElsewhere
from logs.masking import url_origin
from logs.models import PurgeRun
from stream.forms import SubscriptionForm
from stream.models import StreamAttempt, StreamMessage, Subscription
from stream.services.subscriptions import subscription_enable, subscription_secret_generate
from stream.services.upkeep import message_replay


@admin.register(Subscription)
class SubscriptionAdmin(ShowsSecretOnce, TenantScopedAdmin):
    form = SubscriptionForm
    environment_path = "environment"
    list_display = ["endpoint", "environment", "kinds", "payload_format", "enabled", "notice",
                    "messages_link"]  # fmt: skip
    list_filter = ["enabled", "payload_format"]
    list_select_related = ["environment__account"]
    readonly_fields = ["failing_since", "disabled_at", "disabled_reason", "created_at"]

    def get_queryset(self, request):
        # Whether the viewer manages each row's account, for the displays below.
        if request.user.is_superuser:
            manages = Value(True, output_field=BooleanField())
        else:
            manages = Exists(
                Membership.objects.filter(
                    user=request.user,
                    account_id=OuterRef("environment__account_id"),
                    role__in=MANAGER_ROLES,
                )
            )
        return super().get_queryset(request).annotate(viewer_manages=manages)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None or obj.viewer_manages:
            return fields
        # Read-only for them anyway (has_change_permission): the display stands in for it.
        shown = ("endpoint" if name == "url" else name for name in fields)
        return list(dict.fromkeys(shown))

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is None or obj.viewer_manages:
            return readonly
        return [*readonly, "endpoint"]

    @admin.display(description="URL", ordering="url")
    def endpoint(self, obj):
        return obj.url if getattr(obj, "viewer_manages", False) else url_origin(obj.url)

    @admin.display(description="Notice")
    def notice(self, obj):
        if obj.disabled_reason:
            return obj.disabled_reason
        return f"Failing since {moment_text(obj.failing_since)}" if obj.failing_since else ""

    @admin.display(description="Messages")
    def messages_link(self, obj):
        url = reverse("admin:stream_streammessage_changelist")
        url += f"?subscription__id__exact={obj.pk}"
        return format_html('<a href="{}">Messages and attempts</a>', url)

    def changelist_view(self, request, extra_context=None):
        # The notice of a subscriber disabled after a day of failures.
        disabled = (
            self.get_queryset(request)
            .filter(environment__in=environment_list_for_user(user=request.user), enabled=False)
            .exclude(disabled_at=None)
        )
        for subscription in disabled[:10]:
            messages.warning(
                request, f"{self.endpoint(subscription)}: {subscription.disabled_reason}"
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:
            secret = subscription_secret_generate()
            obj.secret_encrypted = secret_encrypt(secret)
            super().save_model(request, obj, form, change)
            self.secret_keep(
                request,
                title="Signing secret of the new subscription",
                secrets_shown=[(obj.url, secret)],
            )
            return
        was_enabled = Subscription.objects.filter(pk=obj.pk, enabled=True).exists()
        super().save_model(request, obj, form, change)
        if obj.enabled and not was_enabled:
            subscription_enable(subscription=obj)


class StreamAttemptInline(admin.TabularInline):
    model = StreamAttempt
    fields = ["attempted_at", "status_code", "error", "duration_ms"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-attempted_at"]


@admin.register(StreamMessage)
class StreamMessageAdmin(ReadOnlyLogAdmin):
    list_display = ["id", "event_type", "notification_id", "subscription", "state",
                    "attempt_count", "last_attempt", "next_attempt_at", "created_at"]  # fmt: skip
    list_filter = ["state"]
    search_fields = ["=notification_id", "=webhook_id"]
    list_select_related = ["subscription"]
    inlines = [StreamAttemptInline]
    actions = ["replay"]
    exclude = ["leased_until"]

    def get_queryset(self, request):
        latest = StreamAttempt.objects.order_by("-attempted_at")
        return super().get_queryset(request).prefetch_related(Prefetch("attempts", latest))

    @admin.display(description="Last attempt")
    def last_attempt(self, obj):
        attempts = list(obj.attempts.all()[:1])
        if not attempts:
            return "—"
        attempt = attempts[0]
        answer = attempt.status_code or attempt.error
        return f"{answer} at {moment_text(attempt.attempted_at)}"

    @admin.action(description="Replay the selected messages (same webhook-id)")
    def replay(self, request, queryset):
        managed = self.managed(request, queryset)
        self.skipped_message(request, queryset.count() - managed.count())
        count = message_replay(message_ids=list(managed.values_list("pk", flat=True)))
        self.message_user(request, f"{count} message(s) put back in line to be sent again.")


@admin.register(PurgeRun)
class PurgeRunAdmin(WrittenElsewhere, TenantScopedAdmin):
    """Read-only. An install-wide run belongs to no account: superusers see it."""

    account_path = "account"
    list_display = ["started_at", "scope", "account_name", "retention_days", "rows_deleted",
                    "partitions_count", "duration_ms", "has_errors"]  # fmt: skip
    list_filter = ["scope"]
    show_full_result_count = False

    def get_queryset(self, request):
        if request.user.is_superuser:
            return PurgeRun.objects.all()
        return super().get_queryset(request)

    @admin.display(description="Partitions dropped")
    def partitions_count(self, obj):
        return len(obj.partitions_dropped)

    @admin.display(description="Errors", boolean=True)
    def has_errors(self, obj):
        return bool(obj.errors)
