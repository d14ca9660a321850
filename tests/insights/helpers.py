"""Recording notifications and events through the log's own services, as the pipeline does."""

from datetime import datetime

from insights.models import COUNT_FIELDS, HourlyRollup
from logs.services import event_record, notification_create


def notification_with(
    environment,
    events: list[tuple],
    *,
    user_id="usr_a",
    type_="order_tracking",
    at=None,
    template="",
):
    """A notification and its events: (kind, channel[, sub_kind[, dedupe_key]]) tuples."""
    notification = notification_create(
        environment_id=environment.id,
        notification_type=type_,
        user_id=user_id,
        email=f"{user_id}@example.com",
        request={"templateId": template} if template else {},
        created_at=at,
    )
    for kind, channel, *rest in events:
        sub_kind = rest[0] if rest else ""
        dedupe_key = rest[1] if len(rest) > 1 else ""
        event_record(
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            kind=kind,
            channel=channel,
            sub_kind=sub_kind,
            source="pipeline",
            dedupe_key=dedupe_key,
            detail=f"{kind} {sub_kind}",
        )
    return notification


def rollup_totals(environment, **filters) -> dict[str, int]:
    rows = HourlyRollup.objects.filter(environment=environment, **filters)
    return {name: sum(getattr(row, name) for row in rows) for name in COUNT_FIELDS}


def rollup_rows(environment) -> set[tuple]:
    return {
        (
            row.hour,
            row.notification_type,
            row.channel,
            row.template,
            *(getattr(row, name) for name in COUNT_FIELDS),
        )
        for row in HourlyRollup.objects.filter(environment=environment)
    }


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)
