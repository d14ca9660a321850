"""The inbox in the console: every stored callback, filterable by provider, state and day,
with its raw request; orphaned, unparseable and rejected ones can be replayed.

Staff see callbacks of their environments (a callback's environment is known once it matched
a delivery, or when its URL named one); callbacks that matched nothing are a superuser's to
inspect. Lists never count the table and filter on indexed columns only.

Headers and bodies go through the log's masker (logs/masking.py), for everyone:
fields and headers named as secrets (the environment's words, and signature, auth, key…), the
values of secret-named URL parameters (a clicked link's `?token=`), and the secrets of the
notifications the callback is about (their merge tags: a reset token in a clicked URL's path).
"""

import json
from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qsl

from django.conf import settings
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from console.queries import sensitive_words_for
from logs.admin import ReadOnlyLogAdmin
from logs.masking import DEFAULT_SENSITIVE_WORDS, URL_SECRET_WORDS, Masker, masker_build
from logs.models import Delivery, Notification
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

    @admin.display(description="headers (secrets masked)")
    def pretty_headers(self, entry: InboxEntry) -> str:
        masked = _masker(entry).data(entry.headers)
        return format_html("<pre>{}</pre>", json.dumps(masked, indent=2, sort_keys=True))

    @admin.display(description="body (as received, secrets masked)")
    def raw_body(self, entry: InboxEntry) -> str:
        # Bytes that are not UTF-8 appear as U+FFFD.
        body = bytes(entry.body).decode("utf-8", "replace")
        return format_html("<pre>{}</pre>", _body_masked(_masker(entry), body))

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


def _masker(entry: InboxEntry) -> Masker:
    """The masker for one callback, built once per page (the change page asks for it twice)."""
    cached = getattr(entry, "_masker", None)
    if cached is not None:
        return cached
    words = (
        sensitive_words_for(environment_id=entry.environment_id)
        if entry.environment_id
        else DEFAULT_SENSITIVE_WORDS
    )
    # Provider-side secrets too: signature headers and fields, auth tokens, keys.
    words = [*words, *URL_SECRET_WORDS] if words else []
    body = bytes(entry.body).decode("utf-8", "replace")
    parsed = _body_parsed(body)
    entry._masker = masker_build(
        sources=[entry.headers, parsed, *_notification_sources(entry)], words=words
    )
    return entry._masker


def _body_parsed(body: str):
    """A JSON body as data; a form body (Twilio) as its fields; anything else as None."""
    try:
        return json.loads(body)
    except ValueError:
        pass
    if "=" in body and not body.lstrip().startswith(("<", "{", "[")):
        return dict(parse_qsl(body, keep_blank_values=True))
    return None


def _body_masked(masker: Masker, body: str) -> str:
    if not masker.active:
        return body
    try:
        return json.dumps(masker.data(json.loads(body)), indent=2)
    except ValueError:
        pass
    # A form body reads as a query string: its secret-named fields are masked as URL
    # parameters are, and every secret found is masked wherever it appears.
    return masker.text("&" + body)[1:]


def _notification_sources(entry: InboxEntry) -> list:
    """The merge tags and requests of the notifications this callback names (by provider
    message id, in its environment): their secrets may come back in it (a clicked URL)."""
    if not entry.environment_id or not entry.message_ids:
        return []
    keys = list(
        Delivery.objects.filter(
            environment_id=entry.environment_id, provider_message_id__in=entry.message_ids[:20]
        ).values_list("notification_id", "notification_created_at")[:20]
    )
    if not keys:
        return []
    found = Notification.objects.filter(
        environment_id=entry.environment_id,
        id__in=[notification_id for notification_id, _ in keys],
        created_at__in={created_at for _, created_at in keys},  # their day partitions only
    ).values_list("stored_merge_tags", "request")
    # Merge tags not stored are the request's, which is a source already.
    return [
        source
        for merge_tags, request in found
        for source in (merge_tags, request)
        if source is not None
    ]
