"""Writes of the access audit: a row per read, and the nightly purge.

A row is one plain INSERT in the request, before the page is rendered, so no page is shown
without its record. A Redis list drained into PostgreSQL by a beat task was the alternative:
it would save the page one round trip, but a row could then be lost between the two stores
(Redis restarted without its append-only file, a drain that fails halfway) and it needs a
fallback path of its own. Measured, the INSERT is not worth avoiding: the notification page
with the audit on takes 1.03x the time of the page with it off (bench/audit.py, which measures
both in the same run, alternating call by call), well inside the 10% allowed.
"""

import logging
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from audit.models import AccessRecord

logger = logging.getLogger(__name__)

USER_AGENT_MAX = AccessRecord._meta.get_field("user_agent").max_length
# Rows deleted per statement (and per transaction) by the purge: short locks, small WAL bursts.
PURGE_BATCH = 5000


def _client_address(request) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client wrote unless a proxy we trust
    # rewrote it, and the install names none (the login lockout reads the same address).
    return request.META.get("REMOTE_ADDR") or None


def access_record(
    *,
    request,
    environment_id: int,
    action: str,
    tracking_id=None,
    user_id: str = "",
    filters: Mapping[str, Any] | None = None,
    row_count: int | None = None,
) -> AccessRecord | None:
    """Record that `request.user` did `action` (AccessRecord.Action) in the environment.
    Returns None only when the install turned the audit off (settings.AUDIT_ACCESS, which the
    benchmark flips to measure what the audit costs)."""
    if not settings.AUDIT_ACCESS:
        return None
    user = request.user
    return AccessRecord.objects.create(
        environment_id=environment_id,
        actor=user,
        actor_name=user.get_username(),
        action=action,
        tracking_id=tracking_id,
        user_id=user_id or "",
        filters=dict(filters) if filters is not None else None,
        row_count=row_count,
        ip=_client_address(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX],
    )


def export_counted(*, record: AccessRecord | None, lines: Iterator, header_lines: int = 1):
    """`lines` (an export's streamed lines, one a row after the header), passed through; when
    the stream ends, or the client goes away, `record.row_count` becomes the rows sent. The
    record itself was written before the first line, so an export never leaves no trace."""
    sent = 0
    try:
        for line in lines:
            sent += 1
            yield line
    finally:
        if record is not None:
            _row_count_save(record, max(sent - header_lines, 0))


def _row_count_save(record: AccessRecord, rows: int) -> None:
    # Also runs when the server closes an abandoned download, whatever the connection is
    # doing then (a failed transaction of another request in the same thread, say): the
    # record is already written, so a count that cannot be saved is logged, never raised.
    try:
        AccessRecord.objects.filter(pk=record.pk).update(row_count=rows)
        record.row_count = rows
    except DatabaseError as exc:
        logger.warning(
            "Access record %s: its export's row count (%s) was not saved (%s)",
            record.pk,
            rows,
            type(exc).__name__,
        )


def access_records_purge(*, retention_days: int, batch: int = PURGE_BATCH) -> int:
    """Delete access records older than `retention_days`, `batch` primary keys at a time,
    each batch its own transaction (the audit_at index finds them). Returns the rows deleted."""
    cutoff = timezone.now() - timedelta(days=retention_days)
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                AccessRecord.objects.filter(at__lt=cutoff)
                .order_by("at")
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                return deleted
            count, _ = AccessRecord.objects.filter(pk__in=ids).delete()
            deleted += count


def erasure_record(sender, *, job, counts: Mapping[str, int], **kwargs) -> None:
    """logs.signals.erasure_done's receiver: the audit row of a finished erasure (who asked,
    when, and how many rows went, per table in `filters`), in the transaction that ends it."""
    AccessRecord.objects.create(
        at=job.requested_at,
        environment_id=job.environment_id,
        actor_id=job.requested_by_user_id,
        actor_name=job.requested_by[: AccessRecord._meta.get_field("actor_name").max_length],
        action=AccessRecord.Action.ERASE,
        user_id=job.user_id,
        filters={"erasure": str(job.pk), "rows": dict(counts)},
        row_count=sum(counts.values()),
    )
