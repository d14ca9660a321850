"""The support console, inside Django's admin.

The Notification admin's list and change pages are the console's search and notification
pages (logs/console/), with the user's timeline, the live timeline feed, reveal and export
beside them. Deliveries and events are shown on the notification page only (masked there), so
they have no admin of their own. Rows are written by the API, the pipeline and provider
callbacks, never by hand.
"""

from functools import partial

from django.contrib import admin
from django.urls import path

from accounts.admin import TenantScopedAdmin
from logs.console import views
from logs.console.models import ConsoleSettings, RevealRecord
from logs.models import Notification


class WrittenElsewhere:
    """Rows written by the log's services or the console itself, never by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(WrittenElsewhere, TenantScopedAdmin):
    environment_path = "environment"

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(partial(function, admin=self))

        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("", view(views.search_view), name=f"{name}_changelist"),
            path("user/", view(views.user_timeline_view), name=f"{name}_user"),
            path("export.csv", view(views.export_view), name=f"{name}_export"),
            path("<path:object_id>/change/", view(views.notification_view), name=f"{name}_change"),
            path("<path:object_id>/events.json", view(views.events_view), name=f"{name}_events"),
            path("<path:object_id>/reveal/", view(views.reveal_view), name=f"{name}_reveal"),
            *super().get_urls(),
        ]


@admin.register(ConsoleSettings)
class ConsoleSettingsAdmin(TenantScopedAdmin):
    """Owners and admins choose, per environment, which field names hold secrets."""

    environment_path = "environment"
    list_display = ["environment", "sensitive_words"]


@admin.register(RevealRecord)
class RevealRecordAdmin(WrittenElsewhere, TenantScopedAdmin):
    """Who revealed which notification's masked values, and when. Written by the console only."""

    environment_path = "environment"
    list_display = ["revealed_at", "username", "notification_id", "environment"]
    list_select_related = ["environment__account"]
    show_full_result_count = False
