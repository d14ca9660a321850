"""The inbox in the console: every stored callback, filterable by provider, state and day,
with its raw request; orphaned, unparseable and rejected ones can be replayed.

Staff see callbacks of their environments (a callback's environment is known once it matched
a delivery, or when its URL named one); callbacks that matched nothing are a superuser's to
inspect. Lists never count the table and filter on indexed columns only.
"""

import json
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from logs.admin import ReadOnlyLogAdmin
from webhooks.models import InboxEntry, InboxState
from webhooks.receivers.email import email_providers
from webhooks.services import inbox_replay

REPLAYABLE = (InboxState.ORPHANED, InboxState.UNPARSEABLE, InboxState.REJECTED)


class ProviderFilter(admin.SimpleListFilter):
    # Fixed choices: a DISTINCT over the whole inbox would scan it.
    title = "provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        providers = ["twilio_sms", "twilio_voice", *email_providers()]
        return [(name, name) for name in providers]

    def queryset(self, request, queryset):
        return queryset.filter(provider=self.value()) if self.value() else queryset


class DayFilter(admin.SimpleListFilter):
    """The day a callback was received (UTC): one partition of the inbox."""

    title = "received (UTC day)"
    parameter_name = "day"

    def lookups(self, request, model_admin):
        today = timezone.now().astimezone(UTC).date()
        days = [today - timedelta(days=n) for n in range(settings.LOG_RETENTION_DAYS + 1)]
        return [(day.isoformat(), f"{day:%a %d %b}") for day in days]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            day = datetime.fromisoformat(self.value()).date()
        except ValueError:
            return queryset.none()
        start = datetime.combine(day, time.min, tzinfo=UTC)
        return queryset.filter(received_at__gte=start, received_at__lt=start + timedelta(days=1))


@admin.register(InboxEntry)
class InboxEntryAdmin(ReadOnlyLogAdmin):
    # Read-only, tenant-scoped, never counted: as the log's own tables.
    list_display = ["id", "received_at", "provider", "state", "message_id_list", "environment",
                    "events_recorded", "attempts", "error"]  # fmt: skip
    list_select_related = ["environment__account"]
    list_filter = [ProviderFilter, "state", DayFilter]
    actions = ["replay"]
    fields = ["received_at", "provider", "state", "environment", "path", "pretty_headers",
              "raw_body", "message_ids", "events_recorded", "attempts", "next_attempt_at",
              "processed_at", "error"]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        if request.user.is_superuser:
            # Including callbacks that matched no environment (orphans, unparseable ones).
            return admin.ModelAdmin.get_queryset(self, request)
        return super().get_queryset(request)

    def has_replay_permission(self, request):
        return request.user.has_perm("webhooks.change_inboxentry")

    @admin.display(description="message ids")
    def message_id_list(self, entry: InboxEntry) -> str:
        return ", ".join(entry.message_ids)

    @admin.display(description="headers")
    def pretty_headers(self, entry: InboxEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(entry.headers, indent=2, sort_keys=True))

    @admin.display(description="body (raw)")
    def raw_body(self, entry: InboxEntry) -> str:
        # Shown as received; bytes that are not UTF-8 appear as U+FFFD.
        return format_html("<pre>{}</pre>", bytes(entry.body).decode("utf-8", "replace"))

    @admin.action(description="Replay selected callbacks (orphaned, unparseable, rejected)",
                  permissions=["replay"])  # fmt: skip
    def replay(self, request, queryset):
        chosen = list(queryset.values_list("id", flat=True))
        reopened = inbox_replay(inbox_ids=chosen)
        skipped = len(chosen) - reopened
        messages.success(request, f"Replaying {reopened} callback(s).")
        if skipped:
            messages.warning(
                request,
                f"Skipped {skipped} callback(s) that are pending or processed already: only "
                "orphaned, unparseable and rejected callbacks are replayed.",
            )
