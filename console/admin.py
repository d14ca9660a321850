"""The support console, inside Django's admin.

The Notification admin's list and change pages are the console's search and notification
pages (console/views/), with the user's timeline, the live timeline feed, reveal and export
beside them. Deliveries and events are shown on the notification page only (masked there), so
they have no admin of their own. Rows are written by the API, the pipeline and provider
callbacks, never by hand.
"""

from functools import partial

from django.contrib import admin
from django.urls import path

from accounts.admin.bases import TenantScopedAdmin
from config.times import stamp, time_html, viewer_zone
from console.models import ConsoleSettings, RevealRecord
from console.views.export import export_view
from console.views.notification import events_view, notification_view, resend_view, reveal_view
from console.views.search import search_view
from console.views.users import erase_view, user_timeline_view
from logs.admin import ReadOnlyLogAdmin
from logs.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyLogAdmin):
    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(partial(function, admin=self))

        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("", view(search_view), name=f"{name}_changelist"),
            path("user/", view(user_timeline_view), name=f"{name}_user"),
            path("user/erase/", view(erase_view), name=f"{name}_erase"),
            path("export.csv", view(export_view), name=f"{name}_export"),
            path("<path:object_id>/change/", view(notification_view), name=f"{name}_change"),
            path("<path:object_id>/events.json", view(events_view), name=f"{name}_events"),
            path("<path:object_id>/reveal/", view(reveal_view), name=f"{name}_reveal"),
            path("<path:object_id>/resend/", view(resend_view), name=f"{name}_resend"),
            *super().get_urls(),
        ]


@admin.register(ConsoleSettings)
class ConsoleSettingsAdmin(TenantScopedAdmin):
    """Owners and admins choose, per environment, which field names hold secrets."""

    environment_path = "environment"
    list_display = ["environment", "sensitive_words"]


@admin.register(RevealRecord)
class RevealRecordAdmin(ReadOnlyLogAdmin):
    """Who revealed which notification's masked values, and when. Written by the console only."""

    list_select_related = ["environment__account"]

    def get_list_display(self, request):
        # Times as on every console page: the viewer's zone, seconds, UTC on hover.
        zone = viewer_zone(request)

        @admin.display(description="revealed at", ordering="revealed_at")
        def revealed_at(record: RevealRecord) -> str:
            return time_html(stamp(record.revealed_at, zone))

        return [revealed_at, "username", "notification_id", "environment"]
