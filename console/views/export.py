"""The export: the current search (or user's timeline) as CSV, streamed in keyset chunks."""

import csv
import re

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect

from audit.models import AccessRecord
from audit.services import access_record, export_counted
from config.export_slots import ExportsBusy, export_slot_stream, export_slot_take
from console import queries
from console.views.search import kept_params, search_context
from console.views.viewer import console_url
from logs.csv_cells import csv_row
from logs.models import Notification
from logs.search_conditions import notification_queryset
from logs.search_filters import NotificationFilters

# An export streams at most this many rows; narrow the filters for more.
EXPORT_MAX = 100_000
# Rows read per keyset chunk (one short query each; channel states read per chunk too).
EXPORT_CHUNK = 1000


_EXPORT_COLUMNS = [
    "tracking_id", "created_at_utc", "type", "status", "user_id", "email", "number", "channels",
]  # fmt: skip


class _Echo:
    def write(self, value):
        return value


def _export_rows(environment_id: int, filters: NotificationFilters):
    writer = csv.writer(_Echo())
    yield writer.writerow(_EXPORT_COLUMNS)
    rows = notification_queryset(environment_id=environment_id, filters=filters)
    left, after = EXPORT_MAX, None
    while left > 0:
        # Keyset chunks, each one short query: no transaction or server-side cursor stays
        # open while the browser downloads at its own pace.
        chunk_rows = rows
        if after is not None:
            chunk_rows = rows.filter(TupleLessThan(Tuple(F("created_at"), F("id")), after))
        chunk = list(chunk_rows[: min(EXPORT_CHUNK, left)])
        yield from _export_chunk(writer, environment_id, chunk)
        if len(chunk) < EXPORT_CHUNK:
            return
        left -= len(chunk)
        after = (chunk[-1].created_at, chunk[-1].id)


def _export_chunk(writer, environment_id: int, chunk: list[Notification]):
    states = queries.channel_states_by_notification(
        environment_id=environment_id, notifications=chunk
    )
    for n in chunk:
        channels = ";".join(f"{s.channel}:{s.state}" for s in states.get(n.id, []))
        values = [str(n.id), n.created_at.isoformat(), n.notification_type, n.status,
                  n.user_id, n.email, n.number, channels]  # fmt: skip
        yield writer.writerow(csv_row(values))


def export_view(request, *, admin):
    """The current filtered list (or user's timeline) as CSV, streamed (capped at EXPORT_MAX
    rows)."""
    user_id = request.GET.get("user", "").strip()
    context = search_context(request, admin, user_id=user_id)
    environment = context.get("environment")
    if environment is None:
        messages.error(request, "Fix the search before exporting it.")
        return redirect(console_url("changelist"))
    if not context["may_export"]:
        raise PermissionDenied("Viewers do not export: ask an owner, admin or support member.")
    form, outcome = context["form"], context["outcome"]
    filters = form.filter_kwargs(context["zone"])
    if user_id:
        filters["user_ids"] = [user_id]
    if outcome.searched_as is not None:
        filters.update(outcome.searched_as.filters)
    holder = f"console:user:{request.user.pk}"
    try:
        slot = export_slot_take(holder=holder, who="You")
    except ExportsBusy as busy:
        response = HttpResponse(busy.message, status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(busy.retry_after)
        return response
    record = access_record(
        request=request,
        environment_id=environment.id,
        action=AccessRecord.Action.EXPORT,
        user_id=user_id,
        filters={**kept_params(form, outcome), **({"user": user_id} if user_id else {})},
    )
    rows = _export_rows(environment.id, NotificationFilters(**filters).normalized())
    response = StreamingHttpResponse(
        export_slot_stream(export_counted(record=record, lines=rows), holder=holder, slot=slot),
        content_type="text/csv; charset=utf-8",
    )
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{environment.account.name}-{environment.name}")
    response["Content-Disposition"] = f'attachment; filename="notifications-{name}.csv"'
    response["Cache-Control"] = "no-store"
    return response
