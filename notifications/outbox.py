"""The outbox's claims and its sweeper: how one worker at a time holds a notification.

A dispatch run claims its batch's outbox rows with one UPDATE (outbox_claim) and holds them
with an expiring lease (Leases), renewed before its provider calls; a notification whose
claim another worker took is marked lost and sends no more. The row is deleted once every
channel is done. The claim is a row, not a session advisory lock: behind a pooler in
transaction mode the connection between two transactions is not this worker's, and a
session lock would stay on it for another client.

The sweeper (outbox_sweep, beat's outbox_sweep_task) re-enqueues rows no worker took in
time, rows whose worker died (lease expired) and scheduled sends now due.
"""

import logging
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from notifications.dispatch_load import Dispatch
from notifications.models import Outbox
from notifications.services.sends import dispatch_enqueue

logger = logging.getLogger(__name__)

_MAX_SWEEP_DOUBLINGS = 6  # re-enqueues of a waiting row back off up to 64 times the grace period

_OUTBOX = Outbox._meta.db_table
# Rows are locked in id order (two batches that share rows never deadlock), and the claim's
# conditions are checked again once a row's lock is had: of two workers racing, the second
# waits on the row and then finds the claim taken.
_CLAIM = f"""
UPDATE {_OUTBOX} SET claimed_by = %s, claimed_until = %s, next_sweep_at = %s
WHERE id IN (
    SELECT id FROM {_OUTBOX}
    WHERE notification_id = ANY(%s::uuid[]) AND due_at <= %s
        AND (claimed_until IS NULL OR claimed_until <= %s)
    ORDER BY id FOR UPDATE
)
RETURNING *
"""  # noqa: S608 (the model's table)
_RENEW = f"""
UPDATE {_OUTBOX} SET claimed_until = %s, next_sweep_at = %s
WHERE id IN (
    SELECT id FROM {_OUTBOX} WHERE notification_id = ANY(%s::uuid[]) AND claimed_by = %s
    ORDER BY id FOR UPDATE
)
RETURNING notification_id
"""  # noqa: S608


def outbox_claim(
    notification_ids: list[uuid.UUID], token: uuid.UUID
) -> tuple[dict[uuid.UUID, Outbox], dict[uuid.UUID, str]]:
    """Claim the batch's outbox rows for this run: one UPDATE for all of them. Returns the
    rows claimed, by notification id, and why each of the others was not."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    # While a worker holds it, the sweeper leaves the row alone (next_sweep_at); when the
    # claim runs out, the sweeper hands the notification to another worker.
    claimed = {
        row.notification_id: row
        for row in Outbox.objects.raw(_CLAIM, [token, until, until, notification_ids, now, now])
    }
    unclaimed = [i for i in notification_ids if i not in claimed]
    not_claimed = dict.fromkeys(
        unclaimed, "nothing to do: dispatched already, or not due"
    )  # already dispatched (row gone) or not due yet (the schedule moved)
    if unclaimed:
        for notification_id, due_at in Outbox.objects.filter(
            notification_id__in=unclaimed
        ).values_list("notification_id", "due_at"):
            if due_at <= now:
                not_claimed[notification_id] = "busy: another worker holds it"
    return claimed, not_claimed


# A claim renewed this recently covers the next provider call without another UPDATE: a
# batch's calls to a quick provider share one renewal, a slow one renews before each call.
RENEWED_RECENTLY_SECONDS = 1.0


class Leases:
    """The claims of one run (one token) over its batch's rows: renewed together, before
    provider calls; a notification whose claim was taken is marked lost and sends no more."""

    def __init__(self, token: uuid.UUID):
        self.token = token
        self.renewed_at = -float("inf")

    def renew(self, dispatches: list[Dispatch], *, unless_recent: bool = False) -> None:
        """Extend the claims of `dispatches` (one UPDATE); mark lost those no longer ours."""
        holding = [dispatch for dispatch in dispatches if not dispatch.lost]
        if not holding or (
            unless_recent and time.monotonic() - self.renewed_at < RENEWED_RECENTLY_SECONDS
        ):
            return
        renewed_at = time.monotonic()
        until = timezone.now() + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
        with connection.cursor() as cursor:
            cursor.execute(_RENEW, [until, until, [d.notification.id for d in holding], self.token])
            kept = {notification_id for (notification_id,) in cursor.fetchall()}
        for dispatch in holding:
            if dispatch.notification.id not in kept:
                dispatch.lost = True
        self.renewed_at = renewed_at

    def release(self, notification_ids: list[uuid.UUID]) -> None:
        # A run that stops early (an error) lets the next one start at once, not at lease end.
        Outbox.objects.filter(notification_id__in=notification_ids, claimed_by=self.token).update(
            claimed_by=None, claimed_until=None
        )

    def done(self, notification_ids: list[uuid.UUID]) -> None:
        if notification_ids:
            Outbox.objects.filter(
                notification_id__in=notification_ids, claimed_by=self.token
            ).delete()


def outbox_sweep(*, now: datetime | None = None, limit: int = 1000) -> list[uuid.UUID]:
    """Enqueue outbox rows whose time has come: sends no worker took within
    OUTBOX_SWEEP_AFTER_SECONDS (broker down or message lost), dispatches whose worker died
    (lease expired), and scheduled sends now due. Rows locked by another sweeper are
    skipped, and each row's next look backs off, so a long queue is not flooded."""
    now = now or timezone.now()
    grace = settings.OUTBOX_SWEEP_AFTER_SECONDS
    with transaction.atomic():
        rows = list(
            Outbox.objects.select_for_update(skip_locked=True)
            .filter(next_sweep_at__lte=now)
            .order_by("next_sweep_at")[:limit]
        )
        for row in rows:
            row.next_sweep_at = now + timedelta(
                seconds=grace * 2 ** min(row.sweeps, _MAX_SWEEP_DOUBLINGS)
            )
            row.sweeps += 1
        Outbox.objects.bulk_update(rows, ["next_sweep_at", "sweeps"])
        ids = [row.notification_id for row in rows]
        transaction.on_commit(lambda: [dispatch_enqueue(i) for i in ids])
    if ids:
        logger.info("Outbox sweeper enqueued %d notification(s)", len(ids))
    return ids
