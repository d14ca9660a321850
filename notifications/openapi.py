"""The send API's bodies and answers as the OpenAPI schema (/api/schema/, /api/docs/) shows
them, field by field. For the schema only: the views parse with notifications.wire, whose
tables (channels, inline content, delivery values) these serializers are built from, so the
two cannot name different fields. Descriptions are CommonMark."""

import uuid

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    inline_serializer,
)
from rest_framework import serializers

from logs.api.serializers import ErrorSerializer
from notifications.wire import (
    CHANNEL_FROM_WIRE,
    DELIVERY_VALUES,
    IN_APP_MOMENTS,
    INLINE_CONTENT,
    MAX_ID_LENGTH,
    MAX_TYPE_LENGTH,
)

WIRE_CHANNELS = list(CHANNEL_FROM_WIRE)
TRACKING_ID = str(uuid.UUID("6f1c2b1e-8a54-4c1b-9a3e-2f0d6f6c7a10"))


def _text(help_text: str, **kwargs) -> serializers.CharField:
    return serializers.CharField(required=False, help_text=help_text, **kwargs)


def _email_list(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.EmailField(), required=False, help_text=help_text
    )


class SendUserSerializer(serializers.Serializer):
    id = serializers.CharField(
        max_length=MAX_ID_LENGTH,
        help_text="**Required.** Your id of the user: what the logs are searched by.",
    )
    email = serializers.EmailField(
        required=False,
        help_text="The address for `EMAIL`, e.g. `alice@example.com` (omitted: the one "
        "`identify` stored for this user, if any).",
    )
    number = _text(
        "The number for `SMS` and `CALL`: E.164 (`+14155550100`) or an unformatted "
        "US/Canadian number (`(415) 555-0100`), stored as E.164 (omitted: the identified one).",
        max_length=64,
    )
    timezone = _text("An IANA time zone, e.g. `America/New_York`.", max_length=64)
    pushTokens = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="Mobile push tokens: `{type: FCM|APN, token, device: {device_id, …}}`.",
    )
    webPushTokens = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="Web push subscriptions: `{sub: {endpoint, keys: {p256dh, auth}}}`.",
    )


class EmailOptionsSerializer(serializers.Serializer):
    replyToAddresses = _email_list("Reply-To addresses.")
    ccAddresses = _email_list("Cc addresses: at most `SEND_EMAIL_MAX_CC` (10 by default).")
    bccAddresses = _email_list("Bcc addresses: at most `SEND_EMAIL_MAX_BCC` (10 by default).")
    fromName = _text("The sender's display name.", max_length=200)
    fromAddress = serializers.EmailField(
        required=False,
        help_text="The From address: its domain must be `DEFAULT_FROM_EMAIL`'s or one of the "
        "environment's verified sender domains (console: Sender domains), else 400.",
    )


class SendOptionsSerializer(serializers.Serializer):
    email = EmailOptionsSerializer(required=False, help_text="Email headers and sender.")
    apn = serializers.DictField(
        required=False, help_text="Accepted and not used (push has no provider yet)."
    )
    fcm = serializers.DictField(
        required=False, help_text="Accepted and not used (push has no provider yet)."
    )


# Inline content: what each wire field is, by (wire key, field).
_INLINE_HELP = {
    "subject": "The subject (a Liquid template).",
    "html": "The HTML body (a Liquid template; merge tags are HTML-escaped here).",
    "previewText": "Accepted and kept with the request; not put into the email yet.",
    "senderName": "The sender's display name (as `options.email.fromName`).",
    "senderEmail": "The From address (as `options.email.fromAddress`, same domain rule).",
    "message": "The text (a Liquid template).",
    "title": "The title (a Liquid template).",
    "url": "Where a click leads (a Liquid template).",
    "image": "An image URL (a Liquid template).",
    "icon": "An icon URL (a Liquid template).",
}
_INLINE_SUMMARY = {
    "email": "Inline email content, used instead of the catalogue's email template.",
    "sms": "Inline SMS text, used instead of the catalogue's SMS template.",
    "call": "Inline call script, read out by the voice call.",
    "inapp": "Inline in-app item (the user's feed).",
    "web_push": "Inline web push content (web push has no provider yet: the channel is Failed, "
    "saying so).",
    "mobile_push": "Inline mobile push content (push has no provider yet: the channel is "
    "Failed, saying so).",
}


def _inline_serializer(key: str, fields: dict[str, str]) -> serializers.Serializer:
    name = "".join(part.title() for part in key.split("_")) + "Content"
    attrs = {theirs: _text(_INLINE_HELP[theirs]) for theirs in fields}
    return type(name, (serializers.Serializer,), attrs)(
        required=False, help_text=_INLINE_SUMMARY[key]
    )


def _channel_list(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=WIRE_CHANNELS),
        required=False,
        min_length=1,
        help_text=help_text,
    )


class _SendRequestFields(serializers.Serializer):
    notificationId = serializers.CharField(
        max_length=MAX_TYPE_LENGTH,
        help_text="**Required** (or `type`). The notification type: its key in the console's "
        "catalogue, e.g. `order_tracking`. An unknown one answers 404 with the close matches.",
    )
    user = SendUserSerializer(help_text="**Required** (or `to`). Who receives it.")
    mergeTags = serializers.DictField(
        required=False,
        help_text="Any JSON object, rendered into the templates with Liquid (`{{ first_name }}`, "
        "`{{ order.items[0].sku }}`). A tag a catalogue template reads and the send lacks "
        "is named in the answer's `messages` (202 from `/sender`). The whole body, merge tags "
        "included, may be at most 1 MB.",
    )
    type = _text(
        "The newer SDKs' spelling of `notificationId` (send one of the two).",
        max_length=MAX_TYPE_LENGTH,
    )
    to = SendUserSerializer(required=False, help_text="The newer SDKs' spelling of `user`.")
    parameters = serializers.DictField(
        required=False, help_text="The newer SDKs' spelling of `mergeTags`."
    )
    replace = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Literal, case-sensitive replacements applied after the merge tags: "
        '`{"[[name]]": "Alice"}`.',
    )
    forceChannels = _channel_list(
        "Send on these channels instead of the type's (deprecated by NotificationAPI, still "
        "honoured). User preferences still apply."
    )
    schedule = serializers.DateTimeField(
        required=False,
        help_text="When to send: ISO 8601 with a zone (`2026-12-01T09:00:00Z`). Omitted or "
        "past: now. At most the log retention minus one day ahead (400 past it). Move or "
        "cancel it with `PATCH`/`DELETE /{clientId}/schedule/{trackingId}`.",
    )
    templateId = _text(
        "Only `default` exists here: another id sends with the default template and answers "
        "202 saying so.",
        max_length=MAX_ID_LENGTH,
    )
    subNotificationId = _text(
        "A category within the type, which a user can turn off on its own.",
        max_length=MAX_ID_LENGTH,
    )
    secondaryId = _text("Deprecated spelling of `subNotificationId`.", max_length=MAX_ID_LENGTH)
    options = SendOptionsSerializer(required=False, help_text="Per-channel delivery options.")


# The fields above plus one inline content object per entry of wire's INLINE_CONTENT.
SendSerializer = type(
    "SendSerializer",
    (_SendRequestFields,),
    {key: _inline_serializer(key, fields) for key, (_, fields) in INLINE_CONTENT.items()},
)


class SendAcceptedSerializer(serializers.Serializer):
    trackingId = serializers.UUIDField(
        help_text="The notification's id: read it back with `GET /api/v1/logs/{trackingId}`."
    )
    messages = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Warnings (a merge tag the templates read and the send lacks, …); "
        "`/sender` sends them only with 202.",
    )


SEND_DESCRIPTION = """NotificationAPI's `send()`: the official server SDKs call it unchanged
(point them at this server's base URL). The request is validated, written (the notification and
its **Received** event) and answered at once; sending happens in the background, and the result
is read back with `GET /api/v1/logs/{trackingId}`.

- **200** `{"trackingId"}`: accepted. **202** `{"trackingId", "messages"}`: accepted, with
  warnings (the SDKs log them).
- Both spellings are accepted: `notificationId`/`user`/`mergeTags` or the newer
  `type`/`to`/`parameters` (not both with different values).
- Inline content (`email`, `sms`, `call`, `inapp`, `web_push`, `mobile_push`) replaces the
  catalogue's template of that channel; each template part is Liquid, at most
  `TEMPLATE_INLINE_MAX_CHARS` (100,000) characters, checked at once (400 naming the field).
- Optional `Idempotency-Key` header (up to 255 characters): a repeat answers the first
  tracking id and sends nothing; the same key with a different body is a 409.
- The whole body may be at most 1,048,576 bytes (1 MB). A refused request writes nothing and
  answers `{"message"}` naming the field."""

SEND_EXAMPLES = [
    OpenApiExample(
        "An order update (classic spelling)",
        request_only=True,
        value={
            "notificationId": "order_tracking",
            "user": {"id": "usr_123", "email": "alice@example.com", "number": "+14155550100"},
            "mergeTags": {"first_name": "Alice", "order_id": "A-1001"},
        },
    ),
    OpenApiExample(
        "Scheduled, email only, with options",
        request_only=True,
        value={
            "notificationId": "order_tracking",
            "user": {"id": "usr_123", "email": "alice@example.com", "timezone": "Europe/Paris"},
            "mergeTags": {"first_name": "Alice", "order_id": "A-1001"},
            "forceChannels": ["EMAIL"],
            "schedule": "2026-12-01T09:00:00Z",
            "subNotificationId": "shipping",
            "options": {
                "email": {
                    "replyToAddresses": ["support@example.com"],
                    "ccAddresses": ["orders@example.com"],
                    "fromName": "Example Shop",
                }
            },
        },
    ),
    OpenApiExample(
        "Inline content (newer spelling)",
        request_only=True,
        value={
            "type": "welcome",
            "to": {"id": "usr_123", "email": "alice@example.com", "number": "+14155550100"},
            "parameters": {"first_name": "Alice"},
            "email": {
                "subject": "Welcome, {{ first_name }}",
                "html": "<p>Hi {{ first_name }}, welcome aboard.</p>",
                "previewText": "Your account is ready",
            },
            "sms": {"message": "Welcome, {{ first_name }}!"},
        },
    ),
]

SENDER_RESPONSES = {
    200: OpenApiResponse(SendAcceptedSerializer, description="Accepted."),
    202: OpenApiResponse(
        SendAcceptedSerializer, description="Accepted, with warnings in `messages`."
    ),
    400: OpenApiResponse(ErrorSerializer, description="Bad input: the message names the field."),
    401: OpenApiResponse(ErrorSerializer, description="Missing or invalid credentials."),
    403: OpenApiResponse(ErrorSerializer, description="The credential lacks the `send` scope."),
    404: OpenApiResponse(
        ErrorSerializer, description="Unknown `notificationId` (the message lists close ones)."
    ),
    409: OpenApiResponse(
        ErrorSerializer, description="`Idempotency-Key` reused with a different body."
    ),
    429: OpenApiResponse(ErrorSerializer, description="Rate limited: see `Retry-After`."),
}
SENDER_EXAMPLES = [
    *SEND_EXAMPLES,
    OpenApiExample(
        "Accepted", value={"trackingId": TRACKING_ID}, response_only=True, status_codes=["200"]
    ),
    OpenApiExample(
        "Accepted with a warning",
        value={
            "trackingId": TRACKING_ID,
            "messages": [
                "mergeTags lacks order_id, used by the EMAIL template(s) of 'order_tracking': "
                "send them, or those channels will be Failed ('... is undefined')."
            ],
        },
        response_only=True,
        status_codes=["202"],
    ),
    OpenApiExample(
        "Bad input",
        value={"message": "user.id is required: send it as a non-empty string."},
        response_only=True,
        status_codes=["400"],
    ),
]
CREATE_RESPONSES = {
    201: OpenApiResponse(SendAcceptedSerializer, description="Accepted (`Location` header)."),
    200: OpenApiResponse(
        SendAcceptedSerializer, description="A repeat of an `Idempotency-Key`: the first send."
    ),
    **{code: SENDER_RESPONSES[code] for code in (400, 401, 403, 404, 409, 429)},
}
CREATE_EXAMPLES = [
    *SEND_EXAMPLES,
    OpenApiExample(
        "Created",
        value={"trackingId": TRACKING_ID, "messages": []},
        response_only=True,
        status_codes=["201"],
    ),
]

# The other endpoints' bodies.


class ScheduleUpdateSerializer(serializers.Serializer):
    schedule = serializers.DateTimeField(
        required=False, help_text="The new send time: ISO 8601 with a zone."
    )
    mergeTags = serializers.DictField(
        required=False, help_text="New merge tags, replacing the send's (or `parameters`)."
    )
    parameters = serializers.DictField(
        required=False, help_text="The newer SDKs' spelling of `mergeTags`."
    )


class RetractSerializer(serializers.Serializer):
    notificationId = serializers.CharField(help_text="**Required.** The notification type.")
    userId = serializers.CharField(help_text="**Required.** Whose in-app items to remove.")
    subNotificationId = _text("Only this category's items.")
    secondaryId = _text("Deprecated spelling of `subNotificationId`.")


class SubNotificationSerializer(serializers.Serializer):
    title = _text("The category's name as users see it.")


class PreferenceSerializer(serializers.Serializer):
    notificationId = serializers.CharField(
        max_length=MAX_TYPE_LENGTH, help_text="**Required.** The notification type."
    )
    channel = serializers.ChoiceField(
        choices=WIRE_CHANNELS, required=False, help_text="Omitted: every channel."
    )
    subNotificationId = _text("Only this category.", max_length=MAX_ID_LENGTH)
    delivery = serializers.ChoiceField(
        choices=DELIVERY_VALUES,
        required=False,
        help_text="`off` stops it (an **Ignored** event says why); default `instant`.",
    )
    state = serializers.BooleanField(
        required=False, help_text="Legacy SDKs' form: `true` is `instant`, `false` is `off`."
    )


class IdentifySerializer(SendUserSerializer):
    id = None  # the user id is in the URL


class _InAppUpdateFields(serializers.Serializer):
    trackingIds = serializers.ListField(
        child=serializers.CharField(), min_length=1, help_text="**Required.** The items."
    )


# trackingIds plus one time per moment wire reads (opened, clicked, archived, ...).
InAppUpdateSerializer = type(
    "InAppUpdateSerializer",
    (_InAppUpdateFields,),
    {
        moment: serializers.DateTimeField(
            required=False,
            help_text=f"When the user did it ({moment}): ISO 8601 with a zone.",
        )
        for moment in IN_APP_MOMENTS
    },
)


def answer(name: str, description: str, **fields) -> dict:
    """A 200 answer of a few fields (an inline serializer named `name`)."""
    return {200: OpenApiResponse(inline_serializer(name, fields), description=description)}


def errors(*codes: int, user_hash: bool = False) -> dict:
    """The send API's refusals `codes`, as SENDER_RESPONSES describes them; `user_hash`: an
    endpoint an end user's app calls, where a 403 is also another user's hash."""
    refusals = {code: SENDER_RESPONSES[code] for code in codes}
    if user_hash and 403 in refusals:
        refusals[403] = OpenApiResponse(
            ErrorSerializer,
            description="The user hash of another user than the one in the URL, or a server "
            "credential without the `send` scope.",
        )
    return refusals


CLIENT_ID = OpenApiParameter(
    "client_id", str, OpenApiParameter.PATH, description="The environment's client id."
)


CREATE_DESCRIPTION = """The same body, checks and background sending as
`POST /{clientId}/sender`, answered the REST way: **201** with a `Location` header
(`/api/v1/notifications/{trackingId}`) and `{"trackingId", "messages"}`, warnings included; a
repeated `Idempotency-Key` answers **200** with the first send's tracking id. Read the result
back with `GET /api/v1/logs/{trackingId}`."""

SCHEDULE_UPDATE_DESCRIPTION = """NotificationAPI's `update_schedule`: a partial send body with
a new `schedule` and/or new `mergeTags`, while the send has not gone out (409 once it is due or
sent; 404 for a tracking id of another environment)."""

SUB_NOTIFICATION_DESCRIPTION = """A sub-notification is a category within a notification type
(say, one project's updates) that a user can turn off on its own
(`subNotificationId` in a send and in preferences)."""

PREFERENCES_DESCRIPTION = """NotificationAPI's `set_user_preferences`: a JSON **array**, each
item one notification type (optionally one channel, one sub-notification). A channel a user
turned `off` is not sent: its **Ignored** event says *user preference*. Preferences not in
the array are left as they were."""

IDENTIFY_DESCRIPTION = """NotificationAPI's `identify_user`: the user's contact details,
without `id` (it is in the URL). A later send that omits `email`, `number` or `timezone` uses
these. Callable with the user hash of that user (an end user's app) or the client secret."""

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Up to 255 characters. A repeat within the log retention answers the first "
    "send's tracking id and sends nothing; the same key with another body is a 409.",
)
TRACKING_ID_PATH = OpenApiParameter(
    "tracking_id", str, OpenApiParameter.PATH, description="The tracking id `send` answered."
)
USER_ID_PATH = OpenApiParameter(
    "user_id", str, OpenApiParameter.PATH, description="Your id of the user (may contain `/`)."
)
SUB_NOTIFICATION_PATH = [
    CLIENT_ID,
    OpenApiParameter(
        "notification_id", str, OpenApiParameter.PATH, description="The notification type."
    ),
    OpenApiParameter(
        "sub_notification_id", str, OpenApiParameter.PATH, description="The category's id."
    ),
]
PREFERENCE_QUERY = [
    OpenApiParameter(
        "notificationId", str, required=True, description="The notification type (required)."
    ),
    OpenApiParameter("subNotificationId", str, description="Only this category's preferences."),
]
FEED_COUNT = OpenApiParameter("count", int, description="How many items, 1 to 200 (default 50).")

TRACKING_ID_ANSWER = answer("ScheduleAnswer", "Done.", trackingId=serializers.UUIDField())
RETRACT_ANSWER = answer(
    "RetractAnswer",
    "Removed.",
    retracted=serializers.IntegerField(help_text="How many in-app items were removed."),
)
SUB_NOTIFICATION_ANSWER = answer(
    "SubNotificationAnswer",
    "Done.",
    notificationId=serializers.CharField(),
    subNotificationId=serializers.CharField(),
    title=serializers.CharField(required=False),
)
PREFERENCES_ANSWER = answer(
    "PreferencesAnswer",
    "Set: each preference given is created or replaced; the user's others are unchanged.",
    userId=serializers.CharField(),
    preferences=serializers.IntegerField(help_text="How many were set."),
)
DELETED_ANSWER = answer(
    "DeletedAnswer", "Deleted.", deleted=serializers.IntegerField(help_text="How many.")
)
IDENTIFY_ANSWER = answer(
    "IdentifyAnswer",
    "The user as stored.",
    id=serializers.CharField(),
    email=serializers.CharField(),
    number=serializers.CharField(help_text="E.164."),
    timezone=serializers.CharField(),
)
UPDATED_ANSWER = answer(
    "InAppUpdateAnswer", "Updated.", updated=serializers.IntegerField(help_text="How many.")
)
FEED_ANSWER = answer(
    "InAppFeed",
    "The user's in-app items.",
    notifications=inline_serializer(
        "InAppItem",
        {
            "id": serializers.UUIDField(),
            "trackingId": serializers.UUIDField(),
            "notificationId": serializers.CharField(),
            "subNotificationId": serializers.CharField(allow_null=True),
            "title": serializers.CharField(),
            "redirectURL": serializers.CharField(allow_null=True),
            "imageURL": serializers.CharField(allow_null=True),
            "date": serializers.DateTimeField(),
            "opened": serializers.DateTimeField(allow_null=True),
            "clicked": serializers.DateTimeField(allow_null=True),
        },
        many=True,
    ),
)
