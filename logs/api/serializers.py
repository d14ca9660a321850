"""What the logs API answers. Field names are camelCase, as NotificationAPI's wire protocol
and /api/v1/environment spell them; times are ISO 8601 UTC in /api/v1 and epoch milliseconds
in NotificationAPI's logs/query, as its SDKs expect.

The serializers below describe every answer (drf-spectacular reads them for the schema). The
two hot paths, a page of the list and a page of logs/query (up to 1,000 records), are built by
the plain functions at the end instead, about ten times faster than DRF serializers; a test
checks that both give the same answer for the same notifications.
"""

from datetime import datetime

from rest_framework import serializers

from logs.api.params import CHANNEL_WIRE_NAMES
from logs.content_retention import content_cleared_notice
from logs.vocabulary import Channel, DeliveryState, EventKind, EventSubKind, NotificationStatus


class DeliverySummarySerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    state = serializers.ChoiceField(choices=DeliveryState.choices)
    stateDetail = serializers.ChoiceField(
        source="state_detail",
        choices=EventSubKind.choices,
        help_text="The sub-kind that decided the state (bounce, busy, …), or empty.",
    )


class LogSerializer(serializers.Serializer):
    trackingId = serializers.UUIDField(source="id")
    type = serializers.CharField(
        source="notification_type", help_text="The notification type (notificationId)."
    )
    userId = serializers.CharField(source="user_id")
    email = serializers.CharField()
    number = serializers.CharField(help_text="E.164.")
    status = serializers.ChoiceField(choices=NotificationStatus.choices)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    deliveries = DeliverySummarySerializer(source="api_deliveries", many=True)


class LogPageSerializer(serializers.Serializer):
    results = LogSerializer(many=True)
    next = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null on the last."
    )
    stoppedEarly = serializers.BooleanField(
        help_text="True when the search used up its budget before filling the page: the page "
        "may be short (even empty) and `next` continues from where it stopped."
    )
    searchedBackTo = serializers.DateTimeField(
        allow_null=True,
        help_text="With stoppedEarly: every notification created at or after this time was "
        "examined.",
    )


class DeliverySerializer(DeliverySummarySerializer):
    provider = serializers.CharField()
    providerMessageId = serializers.CharField(source="provider_message_id")
    destination = serializers.CharField()
    # sent_content: as sent, however stored (logs.selectors.notification_deliveries_sent).
    subject = serializers.CharField(
        source="sent_content.subject", help_text="Rendered email subject, as sent."
    )
    html = serializers.CharField(
        source="sent_content.html", help_text="Rendered email HTML, as sent."
    )
    text = serializers.CharField(
        source="sent_content.text",
        help_text="The email's text part, the SMS body, the call script or the in-app title.",
    )
    errorCode = serializers.CharField(source="error_code")
    errorMessage = serializers.CharField(source="error_message")
    sentAt = serializers.DateTimeField(source="sent_at", allow_null=True)
    deliveredAt = serializers.DateTimeField(source="delivered_at", allow_null=True)
    failedAt = serializers.DateTimeField(source="failed_at", allow_null=True)
    updatedAt = serializers.DateTimeField(source="updated_at")


class TimelineEventSerializer(serializers.Serializer):
    label = serializers.CharField(help_text='As support staff read it: "Failed - Bounce".')
    kind = serializers.ChoiceField(choices=EventKind.choices)
    subKind = serializers.ChoiceField(source="sub_kind", choices=EventSubKind.choices)
    channel = serializers.CharField(help_text="Empty for events of the whole request.")
    occurredAt = serializers.DateTimeField(source="occurred_at")
    recordedAt = serializers.DateTimeField(source="recorded_at")
    source = serializers.CharField(help_text='"api", "pipeline" or the provider\'s name.')
    detail = serializers.CharField()


class LogDetailSerializer(LogSerializer):
    timezone = serializers.CharField()
    mergeTags = serializers.JSONField(source="merge_tags")
    request = serializers.JSONField(help_text="The send request as it was received.")
    scheduledFor = serializers.DateTimeField(source="scheduled_for", allow_null=True)
    contentCleared = serializers.SerializerMethodField(
        help_text="Null, or why the content is empty: 'Content cleared after 30 days (content "
        "retention)'. Past the environment's content retention, the subject, bodies, merge "
        "tags, the request's content and provider payloads are cleared; ids, addresses, "
        "states, times and the timeline stay."
    )
    deliveries = DeliverySerializer(source="api_deliveries", many=True)
    timeline = TimelineEventSerializer(source="api_timeline", many=True)

    def get_contentCleared(self, notification) -> str | None:
        days = notification.content_cleared_after
        return None if days is None else content_cleared_notice(days)


def _epoch_ms(moment) -> int:
    return int(moment.timestamp() * 1000)


class LogRecordEventSerializer(serializers.Serializer):
    type = serializers.SerializerMethodField(help_text="Received, Sent, Failed, …")
    subType = serializers.SerializerMethodField(help_text="Bounce, Busy, … or null.")
    channel = serializers.SerializerMethodField(help_text="EMAIL, SMS, … or null.")
    time = serializers.SerializerMethodField(help_text="Epoch milliseconds.")
    detail = serializers.CharField()

    def get_type(self, event) -> str:
        return EventKind(event.kind).label

    def get_subType(self, event) -> str | None:
        # "Failed - Bounce" → "Bounce": the record's type already says Failed.
        return EventSubKind(event.sub_kind).label.split(" - ", 1)[-1] if event.sub_kind else None

    def get_channel(self, event) -> str | None:
        return CHANNEL_WIRE_NAMES.get(event.channel)

    def get_time(self, event) -> int:
        return _epoch_ms(event.occurred_at)


class LogRecordSerializer(serializers.Serializer):
    """One record of NotificationAPI's logs/query answer."""

    trackingId = serializers.UUIDField(source="id")
    notificationId = serializers.CharField(source="notification_type")
    userId = serializers.CharField(source="user_id")
    envId = serializers.SerializerMethodField(help_text="The environment's client id.")
    channels = serializers.SerializerMethodField(help_text="EMAIL, SMS, …")
    status = serializers.ChoiceField(choices=NotificationStatus.choices)
    request = serializers.JSONField(help_text="The original send body.")
    createdAt = serializers.SerializerMethodField(help_text="Epoch milliseconds.")
    events = LogRecordEventSerializer(source="api_timeline", many=True)

    def get_envId(self, notification) -> str:
        return self.context["client_id"]

    def get_channels(self, notification) -> list[str]:
        return [CHANNEL_WIRE_NAMES[d.channel] for d in notification.api_deliveries]

    def get_createdAt(self, notification) -> int:
        return _epoch_ms(notification.created_at)


class LogQueryResponseSerializer(serializers.Serializer):
    logs = LogRecordSerializer(many=True)
    nextToken = serializers.CharField(
        required=False, help_text="Extension: present when more logs follow; send it back."
    )


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="What is wrong and how to fix it.")


# -- the hot paths, without DRF's per-field machinery -------------------------------------------


def iso(moment: datetime) -> str:
    # DRF's DateTimeField format: ISO 8601, UTC as "Z".
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def log_summary(notification) -> dict:
    """LogSerializer's answer for one notification (with `api_deliveries` set)."""
    return {
        "trackingId": str(notification.id),
        "type": notification.notification_type,
        "userId": notification.user_id,
        "email": notification.email,
        "number": notification.number,
        "status": notification.status,
        "createdAt": iso(notification.created_at),
        "updatedAt": iso(notification.updated_at),
        "deliveries": [
            {"channel": d.channel, "state": d.state, "stateDetail": d.state_detail}
            for d in notification.api_deliveries
        ],
    }


def _record_event(event) -> dict:
    return {
        "type": EventKind(event.kind).label,
        "subType": (
            EventSubKind(event.sub_kind).label.split(" - ", 1)[-1] if event.sub_kind else None
        ),
        "channel": CHANNEL_WIRE_NAMES.get(event.channel),
        "time": _epoch_ms(event.occurred_at),
        "detail": event.detail,
    }


def log_record(notification, *, client_id: str) -> dict:
    """LogRecordSerializer's answer for one notification (with `api_deliveries` and
    `api_timeline` set)."""
    return {
        "trackingId": str(notification.id),
        "notificationId": notification.notification_type,
        "userId": notification.user_id,
        "envId": client_id,
        "channels": [CHANNEL_WIRE_NAMES[d.channel] for d in notification.api_deliveries],
        "status": notification.status,
        "request": notification.request,
        "createdAt": _epoch_ms(notification.created_at),
        "events": [_record_event(event) for event in notification.api_timeline],
    }
