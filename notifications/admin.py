from django.contrib import admin

from accounts.admin import TenantScopedAdmin
from accounts.selectors import environment_list_for_user
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

    def get_queryset(self, request):
        environments = environment_list_for_user(user=request.user)
        return super().get_queryset(request).filter(environment__in=environments)


@admin.register(UserPreference)
class UserPreferenceAdmin(TenantScopedAdmin):
    list_display = ["user_id", "notification_type", "channel", "delivery", "environment",
                    "updated_at"]  # fmt: skip
    list_select_related = ["environment__account"]
    list_filter = ["delivery", "channel"]
    search_fields = ["=user_id", "=notification_type"]
    show_full_result_count = False

    def get_queryset(self, request):
        environments = environment_list_for_user(user=request.user)
        return super().get_queryset(request).filter(environment__in=environments)
