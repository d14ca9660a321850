import uuid

from alerts.models import AlertRule
from alerts.vocabulary import RuleKind
from logs.services import event_record, notification_create


def record(environment, *events: tuple[str, str, str], notification_type="order_tracking"):
    """One notification with its (kind, channel, sub_kind) events, recorded by the log's own
    service (so the counters are kept by the event_recorded receiver)."""
    notification = notification_create(
        environment_id=environment.id,
        notification_type=notification_type,
        user_id=f"usr_{uuid.uuid4().hex[:8]}",
        email="alice@example.com",
        number="+14155550100",
    )
    for kind, channel, sub_kind in events:
        event_record(
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            kind=kind,
            channel=channel,
            sub_kind=sub_kind,
            source="pipeline",
        )
    return notification


def rule(environment, **fields) -> AlertRule:
    defaults = {
        "name": "Bounces",
        "kind": RuleKind.FAILURE_RATE,
        "channel": "email",
        "window_minutes": 10,
        "threshold_percent": 50,
        "min_notifications": 3,
        "email_recipients": "oncall@example.com",
    }
    return AlertRule.objects.create(environment=environment, **(defaults | fields))
