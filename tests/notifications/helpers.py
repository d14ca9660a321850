import json

from logs.content import DeliveryContent, deliveries_content
from logs.models import Delivery, Event, Notification
from logs.selectors import notification_timeline
from logs.timeline import timeline_sort_key


def send(client, environment, headers, body, capture) -> Notification:
    """POST /{clientId}/sender and run what it enqueued on commit (dispatch, in-process)."""
    with capture(execute=True):
        response = client.post(
            f"/{environment.client_id}/sender",
            data=json.dumps(body),
            content_type="application/json",
            headers=headers,
        )
    assert response.status_code in (200, 202), response.content
    return Notification.objects.get(id=response.json()["trackingId"])


def timeline(notification) -> list[tuple[str, str, str]]:
    """(label, channel, detail) of each event, in the order they were recorded: the rows and
    the events folded into the notification and its deliveries, as every reader sees them
    (logs.selectors.notification_timeline)."""
    events = sorted(notification_timeline(notification=notification), key=_recorded_order)
    return [(event.label, event.channel, event.detail) for event in events]


def _recorded_order(event: Event) -> tuple:
    # A folded event was recorded when it occurred; rows of one batch share recorded_at.
    return (event.recorded_at, *timeline_sort_key(event)[1:])


def rows_and_folded(notification, **conditions) -> list[Event]:
    """The notification's events matching `conditions` (attribute: value), folded or not."""
    return [
        event
        for event in notification_timeline(notification=notification)
        if all(getattr(event, name) == value for name, value in conditions.items())
    ]


def labels(notification, channel: str) -> list[str]:
    return [label for label, ch, _ in timeline(notification) if ch == channel]


def delivery(notification, channel: str) -> Delivery:
    return Delivery.objects.get(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        channel=channel,
    )


def sent(notification, channel: str) -> DeliveryContent:
    """The channel's subject, HTML and text as sent, as every reader reads them."""
    [content] = deliveries_content([delivery(notification, channel)])
    return content


def refreshed(notification) -> Notification:
    return Notification.objects.get(id=notification.id, created_at=notification.created_at)


def email_and_sms_body(index: int, **user) -> dict:
    """A send of order_tracking on email and SMS to user `usr_<index>` (`user` overrides)."""
    return {
        "notificationId": "order_tracking",
        "user": {
            "id": f"usr_{index}",
            "email": f"u{index}@example.com",
            "number": f"+1415555{index:04d}",
            **user,
        },
        "mergeTags": {"first_name": "W", "order_id": str(index)},
        "forceChannels": ["EMAIL", "SMS"],
    }
