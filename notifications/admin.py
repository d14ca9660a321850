from django.contrib import admin

from accounts.admin import TenantScopedAdmin
from notifications.models import ChannelTemplate, NotificationType, UserPreference


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
