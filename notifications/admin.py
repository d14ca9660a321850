from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from accounts.admin import TenantScopedAdmin
from notifications.models import (
    ChannelProvider,
    ChannelTemplate,
    EndUser,
    NotificationType,
    SubNotification,
    UserPreference,
)
from notifications.providers import PROVIDERS_BY_CHANNEL


class ChannelTemplateInline(admin.StackedInline):
    model = ChannelTemplate
    extra = 0


@admin.register(NotificationType)
class NotificationTypeAdmin(TenantScopedAdmin):
    list_display = ["key", "name", "environment", "created_at"]
    list_select_related = ["environment__account"]
    search_fields = ["=key", "name"]
    inlines = [ChannelTemplateInline]
    show_full_result_count = False
    environment_path = "environment"


@admin.register(UserPreference)
class UserPreferenceAdmin(TenantScopedAdmin):
    list_display = ["user_id", "notification_type", "channel", "delivery", "environment",
                    "updated_at"]  # fmt: skip
    list_select_related = ["environment__account"]
    list_filter = ["delivery", "channel"]
    search_fields = ["=user_id", "=notification_type"]
    show_full_result_count = False
    environment_path = "environment"


@admin.register(EndUser)
class EndUserAdmin(TenantScopedAdmin):
    """End users as identified through the API, with their preferences on the same page."""

    list_display = ["user_id", "email", "number", "timezone", "environment", "updated_at"]
    list_select_related = ["environment__account"]
    search_fields = ["=user_id", "=email", "=number"]
    readonly_fields = ["preferences"]
    show_full_result_count = False
    environment_path = "environment"

    @admin.display(description="preferences")
    def preferences(self, obj: EndUser) -> str:
        rows = UserPreference.objects.filter(
            environment_id=obj.environment_id, user_id=obj.user_id
        ).order_by("notification_type", "channel", "sub_notification_id")
        lines = [
            format_html(
                "<li>{}{}{}: <strong>{}</strong></li>",
                row.notification_type,
                f" / {row.get_channel_display()}" if row.channel else " (all channels)",
                f" / {row.sub_notification_id}" if row.sub_notification_id else "",
                row.get_delivery_display(),
            )
            for row in rows
        ]
        if not lines:
            return "No preferences: every notification is delivered instantly."
        return format_html("<ul>{}</ul>", format_html_join("", "{}", ((line,) for line in lines)))


@admin.register(SubNotification)
class SubNotificationAdmin(TenantScopedAdmin):
    list_display = ["sub_notification_id", "title", "notification_type", "environment"]
    list_select_related = ["environment__account"]
    search_fields = ["=notification_type", "=sub_notification_id"]
    show_full_result_count = False
    environment_path = "environment"


@admin.register(ChannelProvider)
class ChannelProviderAdmin(TenantScopedAdmin):
    """Per-environment provider overrides (e.g. the sandbox for a staging environment)."""

    list_display = ["environment", "channel", "provider"]
    list_select_related = ["environment__account"]
    show_full_result_count = False
    environment_path = "environment"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "provider":
            names = sorted({name for names in PROVIDERS_BY_CHANNEL.values() for name in names})
            kwargs["widget"] = forms.Select(choices=[(name, name) for name in names])
        return super().formfield_for_dbfield(db_field, request, **kwargs)
