"""What callers may ask: the query parameters of /api/v1/logs… and the body of
/{clientId}/logs/query, validated into the selectors' NotificationFilters.

DRF serializers validate the input and, exploded by drf-spectacular, document it: the schema
and the validation are one declaration. (django-filter would build a queryset from the same
parameters; the selectors' index-driven pages are that queryset already, so a FilterSet
would be a second copy of the filtering rules.)
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from logs.api.cursors import cursor_from_token
from logs.api.query_filter import CompiledFilter, RequestFilterError, request_filter_compile
from logs.phone import phone_normalize
from logs.search_filters import PAGE_SIZE_MAX, Cursor, NotificationFilters
from logs.vocabulary import Channel, EventKind, EventSubKind, NotificationStatus
from notifications.wire import CHANNEL_FROM_WIRE, CHANNEL_TO_WIRE

# NotificationAPI's channel names on the wire, and ours: the send API's table.
WIRE_CHANNELS = CHANNEL_FROM_WIRE
CHANNEL_WIRE_NAMES = CHANNEL_TO_WIRE
COMPAT_PAGE_SIZE = 100
V1_PAGE_SIZE = 50
_MAX_TIME_MS = 253402300799999  # 9999-12-31T23:59:59.999Z


class BadRequest(ValueError):
    """Input the caller must fix; the message names the field."""


class CaseInsensitiveChoiceField(serializers.ChoiceField):
    """A choice matched whatever its case ("SUCCESS" is "success"); a refusal lists the
    valid values."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        valid = ", ".join(str(choice) for choice in self.choices)
        self.error_messages["invalid_choice"] = f'"{{input}}" is not valid: use one of {valid}.'

    def to_internal_value(self, data):
        if isinstance(data, str):
            folded = {str(choice).lower(): choice for choice in self.choices}
            data = folded.get(data.lower(), data)
        return super().to_internal_value(data)


# Values one list parameter may carry: a query string stays well under the URL limits of
# servers and proxies (gunicorn: 4,094 bytes a request line); a JSON body may carry more.
QUERY_LIST_MAX = 100
BODY_LIST_MAX = 1000


def _text_list(
    help_text: str, max_length: int, max_items: int = QUERY_LIST_MAX, **kwargs
) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=max_length, **kwargs),
        required=False,
        max_length=max_items,
        help_text=help_text,
    )


def _choice_list(help_text: str, choices) -> serializers.ListField:
    return serializers.ListField(
        child=CaseInsensitiveChoiceField(choices=choices),
        required=False,
        max_length=100,
        help_text=help_text,
    )


# A user id as the API takes it, in a query parameter or the path.
USER_ID = serializers.CharField(max_length=255)


class LogFiltersQuery(serializers.Serializer):
    """The filters of /api/v1/logs and its export. Different parameters AND; a parameter
    repeated (`status=failure&status=received`) ORs its values."""

    trackingId = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        max_length=QUERY_LIST_MAX,
        help_text="Tracking ids (the id send() answered); repeat for several.",
    )
    userId = _text_list("Your user ids; repeat for several.", 255)
    email = serializers.CharField(
        required=False, max_length=320, help_text="Recipient email, exact, any case."
    )
    emailPrefix = serializers.CharField(
        required=False,
        min_length=3,
        max_length=320,
        help_text="The start of the recipient email (3+ characters), any case.",
    )
    number = serializers.CharField(
        required=False,
        max_length=64,
        help_text="Recipient phone number in any spelling (+1 415 555 0100, 4155550100).",
    )
    type = _text_list("Notification types (NotificationAPI's notificationId).", 100)
    status = _choice_list(
        "Statuses: received, success, failure. The notification's; with `channel` or "
        "`providerMessageId`, that delivery's own (`channel=sms&status=failure`: the SMS "
        "failed).",
        NotificationStatus.choices,
    )
    channel = _choice_list(
        "Channels the notification used: email, sms, call, in_app, push, web_push. With "
        "`status`, `eventKind` or `eventSubKind`, they apply to that channel's delivery.",
        Channel.choices,
    )
    eventKind = CaseInsensitiveChoiceField(
        choices=EventKind.choices,
        required=False,
        help_text="Notifications whose timeline has an event of this kind (with `channel`: "
        "on that channel).",
    )
    eventSubKind = CaseInsensitiveChoiceField(
        choices=[c for c in EventSubKind.choices if c[0]],
        required=False,
        help_text="Notifications whose timeline has an event of this sub-kind (e.g. bounce; "
        "with `channel`: on that channel).",
    )
    providerMessageId = serializers.CharField(
        required=False,
        max_length=255,
        help_text="The provider's message id of a delivery; `status` and the event filters "
        "then apply to that delivery.",
    )
    createdFrom = serializers.DateTimeField(
        required=False, help_text="Created at or after (ISO 8601; UTC when no offset)."
    )
    createdTo = serializers.DateTimeField(
        required=False, help_text="Created before (ISO 8601; UTC when no offset)."
    )

    def validate_number(self, value):
        try:
            return phone_normalize(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs):
        start, end = attrs.get("createdFrom"), attrs.get("createdTo")
        if start and end and start >= end:
            raise serializers.ValidationError(
                {"createdTo": "The date range is empty: createdTo must be after createdFrom."}
            )
        _check_date_range("createdFrom", start, end)
        return attrs


def _page_size(default: int, help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, min_value=1, max_value=PAGE_SIZE_MAX, default=default, help_text=help_text
    )


def _page_token(help_text: str) -> serializers.CharField:
    return serializers.CharField(required=False, max_length=500, help_text=help_text)


class LogListQuery(LogFiltersQuery):
    limit = _page_size(V1_PAGE_SIZE, f"Page size, 1 to {PAGE_SIZE_MAX}.")
    cursor = _page_token("The `next` cursor of the previous page, unchanged.")


class UserLogListQuery(LogListQuery):
    userId = None  # the user is in the path


class LogExportQuery(LogFiltersQuery):
    format = serializers.ChoiceField(
        choices=["csv", "ndjson"],
        required=False,
        default="ndjson",
        help_text="csv (a header line, then one row a notification) or ndjson.",
    )


def _check_date_range(field: str, start: datetime | None, end: datetime | None) -> None:
    """A request may cover at most LOGS_API_MAX_DATE_RANGE_DAYS (an open end is now)."""
    if start is None:
        return
    maximum = timedelta(days=settings.LOGS_API_MAX_DATE_RANGE_DAYS)
    if (end or timezone.now()) - start > maximum:
        raise serializers.ValidationError(
            {
                field: f"The date range is longer than {maximum.days} days: narrow it (or "
                "page through it one range at a time)."
            }
        )


@dataclass(frozen=True)
class LogSearch:
    filters: NotificationFilters
    request_filter: CompiledFilter | None = None
    after: Cursor | None = None
    limit: int = V1_PAGE_SIZE
    # False when envIdFilter names only other environments: the answer is empty.
    visible: bool = True


def v1_filters(data: dict, *, user_id: str | None = None) -> NotificationFilters:
    """NotificationFilters from validated LogFiltersQuery data."""
    return NotificationFilters(
        tracking_ids=tuple(data.get("trackingId", ())),
        user_ids=(user_id,) if user_id is not None else tuple(data.get("userId", ())),
        email=data.get("email", ""),
        email_prefix=data.get("emailPrefix", ""),
        number=data.get("number", ""),
        provider_message_id=data.get("providerMessageId", ""),
        notification_types=tuple(data.get("type", ())),
        statuses=tuple(data.get("status", ())),
        channels=tuple(data.get("channel", ())),
        event_kind=data.get("eventKind", ""),
        event_sub_kind=data.get("eventSubKind", ""),
        created_from=data.get("createdFrom"),
        created_to=data.get("createdTo"),
    )


def checked(filters: NotificationFilters, field: str = "") -> NotificationFilters:
    """The selectors' own checks (phone numbers, prefixes) as a BadRequest."""
    try:
        return filters.normalized()
    except ValueError as exc:
        raise BadRequest(f"{field}: {exc}" if field else str(exc)) from None


def page_cursor(*, environment_id: int, token: str | None, field: str) -> Cursor | None:
    if not token:
        return None
    try:
        return cursor_from_token(environment_id=environment_id, token=token)
    except ValueError as exc:
        raise BadRequest(f"{field}: {exc}") from None


# -- NotificationAPI's logs/query body -------------------------------------------------------


class DateRangeFilter(serializers.Serializer):
    startTime = serializers.IntegerField(
        required=False, min_value=0, max_value=_MAX_TIME_MS, help_text="Epoch milliseconds."
    )
    endTime = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=_MAX_TIME_MS,
        help_text="Epoch milliseconds, inclusive.",
    )

    def to_internal_value(self, data):
        # A misspelt bound would otherwise be dropped and the search run without it.
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError(
                {unknown[0]: "not a dateRangeFilter field; use startTime and endTime."}
            )
        return super().to_internal_value(data)


class LogQuery(serializers.Serializer):
    """NotificationAPI's query_logs body. Different filters AND; the values of one OR."""

    dateRangeFilter = DateRangeFilter(required=False)
    notificationFilter = _text_list(
        "notificationIds (notification types).", 100, max_items=BODY_LIST_MAX
    )
    channelFilter = _choice_list(
        "Channels: EMAIL, SMS, CALL, INAPP_WEB, PUSH, WEB_PUSH. With statusFilter, the status "
        "is that channel's own (SMS + FAILURE: the SMS failed).",
        list(WIRE_CHANNELS),
    )
    userFilter = _text_list("userIds.", 255, max_items=BODY_LIST_MAX)
    statusFilter = _choice_list(
        "Statuses, any case: RECEIVED, SUCCESS, FAILURE.", NotificationStatus.values
    )
    trackingIds = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        max_length=BODY_LIST_MAX,
        help_text="trackingIds.",
    )
    requestFilter = _text_list(
        "Expressions over the original send body, e.g. "
        '`request.mergeTags.item="Krabby Patty"` (grammar in the description); they OR.',
        2000,
        trim_whitespace=False,
    )
    envIdFilter = _text_list(
        "Environment ids (client ids). Only the credential's own environment is readable.",
        64,
    )
    customFilter = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Not supported: answers 400. Use requestFilter.",
    )
    limit = _page_size(
        COMPAT_PAGE_SIZE,
        f"Extension: page size, 1 to {PAGE_SIZE_MAX} (default {COMPAT_PAGE_SIZE}).",
    )
    nextToken = _page_token("Extension: the nextToken of the previous answer, unchanged.")

    def validate_customFilter(self, value):
        raise serializers.ValidationError(
            "customFilter is not supported: express the condition with requestFilter, e.g. "
            '["request.user.email=\\"*@example.com\\""], and the other filters.'
        )

    def validate(self, attrs):
        dates = attrs.get("dateRangeFilter") or {}
        start, end = _from_ms(dates.get("startTime")), _from_ms(dates.get("endTime"))
        if start and end and start > end:
            raise serializers.ValidationError(
                {"dateRangeFilter": "startTime is after endTime: swap them."}
            )
        _check_date_range("dateRangeFilter", start, end)
        return attrs


def _from_ms(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def compat_search(data: dict, *, environment_id: int, client_id: str) -> LogSearch:
    """A LogSearch from a validated LogQuery."""
    dates = data.get("dateRangeFilter") or {}
    end = _from_ms(dates.get("endTime"))
    filters = NotificationFilters(
        tracking_ids=tuple(data.get("trackingIds", ())),
        user_ids=tuple(data.get("userFilter", ())),
        notification_types=tuple(data.get("notificationFilter", ())),
        statuses=tuple(data.get("statusFilter", ())),
        channels=tuple(WIRE_CHANNELS[c] for c in data.get("channelFilter", ())),
        created_from=_from_ms(dates.get("startTime")),
        # endTime is inclusive; the selectors' upper bound is not.
        created_to=end + timedelta(milliseconds=1) if end else None,
    )
    request_filter = None
    if data.get("requestFilter"):
        try:
            request_filter = request_filter_compile(data["requestFilter"])
        except RequestFilterError as exc:
            raise BadRequest(str(exc)) from None
    env_ids = data.get("envIdFilter")
    return LogSearch(
        filters=checked(filters),
        request_filter=request_filter,
        after=page_cursor(
            environment_id=environment_id, token=data.get("nextToken"), field="nextToken"
        ),
        limit=data["limit"],
        visible=not env_ids or client_id in env_ids,
    )
