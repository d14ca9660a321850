"""Scheduled sends: moved, given new merge tags or deleted while not yet due."""

import uuid

from django.db import transaction
from django.utils import timezone

from accounts.models import Environment
from logs.models import Notification
from logs.services import event_record
from logs.vocabulary import EventKind
from notifications.models import Outbox
from notifications.services.sends import Conflict, NotFound, schedule_check
from notifications.wire import ScheduleUpdate


def _outbox_for_schedule(environment: Environment, tracking_id: uuid.UUID) -> Outbox:
    outbox = (
        Outbox.objects.select_for_update()
        .filter(environment=environment, notification_id=tracking_id)
        .first()
    )
    if outbox is None:
        if Notification.objects.filter(environment=environment, id=tracking_id).exists():
            raise Conflict(
                f"Notification {tracking_id} is not scheduled any more: it was sent or its "
                "schedule was deleted."
            )
        raise NotFound(f"No notification with tracking id {tracking_id} in this environment.")
    if outbox.due_at <= timezone.now():
        raise Conflict(f"Notification {tracking_id} is already due and being sent.")
    return outbox


def schedule_update(
    *, environment: Environment, tracking_id: uuid.UUID, update: ScheduleUpdate
) -> None:
    """Move a scheduled send and/or change its merge tags, while it has not gone out."""
    now = timezone.now()
    with transaction.atomic():
        outbox = _outbox_for_schedule(environment, tracking_id)
        changes: dict = {"updated_at": now}
        if update.merge_tags is not None:
            # Stored as given, even when they are the request's again (a rare write, and
            # the request is not read for it).
            changes["stored_merge_tags"] = update.merge_tags
        if update.schedule is not None:
            # The same window as a send's, from when the notification was made (its day).
            schedule_check(
                environment=environment,
                schedule=update.schedule,
                created_at=outbox.notification_created_at,
            )
            due_at = max(update.schedule, now)
            changes["scheduled_for"] = update.schedule
            outbox.due_at = due_at
            outbox.next_sweep_at = due_at
            outbox.save(update_fields=["due_at", "next_sweep_at"])
        Notification.objects.filter(
            id=tracking_id, created_at=outbox.notification_created_at, environment=environment
        ).update(**changes)


def schedule_delete(*, environment: Environment, tracking_id: uuid.UUID) -> None:
    """Cancel a scheduled send that has not gone out: nothing will be sent for it. The
    cancellation is a request-level Ignored event (no channel), so the timeline says why."""
    with transaction.atomic():
        outbox = _outbox_for_schedule(environment, tracking_id)
        created_at = outbox.notification_created_at
        outbox.delete()
        event_record(
            notification_id=tracking_id,
            notification_created_at=created_at,
            environment_id=environment.id,
            kind=EventKind.IGNORED,
            source="api",
            dedupe_key="ignored:schedule_deleted",
            detail="The scheduled send was deleted before it was due (delete_schedule).",
        )
