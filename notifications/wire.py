"""NotificationAPI's wire protocol, read into plain data: the send request, preference
objects, identify bodies, in-app updates. Pure functions, no database (the limits they apply,
such as SEND_EMAIL_MAX_CC, are settings): every refusal is a
`RequestInvalid` whose message names the field and says what to send instead, which the
API answers with 400.

Both spellings of a send are accepted (reference section 4): the classic
`notificationId`/`user`/`mergeTags` and the newer `type`/`to`/`parameters`.
"""

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from logs.phone import phone_normalize
from logs.vocabulary import Channel
from notifications.rendering import template_check

# NotificationAPI's channel names and ours (reference: "Our decisions").
CHANNEL_FROM_WIRE: dict[str, str] = {
    "EMAIL": Channel.EMAIL,
    "SMS": Channel.SMS,
    "CALL": Channel.CALL,
    "INAPP_WEB": Channel.IN_APP,
    "PUSH": Channel.PUSH,
    "WEB_PUSH": Channel.WEB_PUSH,
}
CHANNEL_TO_WIRE = {ours: wire for wire, ours in CHANNEL_FROM_WIRE.items()}
DELIVERY_VALUES = ("off", "instant", "hourly", "daily", "weekly", "monthly")

# The newer SDKs' inline content per channel: {wire key: (our channel, {their field: ours})}.
# Ours: subject, html and text as a Delivery stores them (text: SMS body, call script,
# in-app title), plus in-app url/image and the email sender overrides.
INLINE_CONTENT = {
    "email": (
        Channel.EMAIL,
        {
            "subject": "subject",
            "html": "html",
            "senderName": "from_name",
            "senderEmail": "from_address",
            "previewText": "preview_text",
        },
    ),
    "sms": (Channel.SMS, {"message": "text"}),
    "call": (Channel.CALL, {"message": "text"}),
    "inapp": (Channel.IN_APP, {"title": "text", "url": "url", "image": "image"}),
    "web_push": (
        Channel.WEB_PUSH,
        {"title": "subject", "message": "text", "icon": "image", "url": "url"},
    ),
    "mobile_push": (Channel.PUSH, {"title": "subject", "message": "text"}),
}

MAX_ID_LENGTH = 255
MAX_TYPE_LENGTH = 100


class RequestInvalid(ValueError):
    """A request the caller must fix; the message says how."""


@dataclass(frozen=True)
class Recipient:
    user_id: str
    email: str = ""
    number: str = ""  # E.164
    timezone: str = ""
    push_tokens: list = field(default_factory=list)
    web_push_tokens: list = field(default_factory=list)


@dataclass(frozen=True)
class EmailOptions:
    reply_to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    from_name: str = ""
    from_address: str = ""


@dataclass(frozen=True)
class SendRequest:
    notification_type: str
    recipient: Recipient
    merge_tags: dict[str, Any] = field(default_factory=dict)
    replace: dict[str, str] = field(default_factory=dict)
    # Our channel values; None: the notification type's channels.
    force_channels: tuple[str, ...] | None = None
    schedule: datetime | None = None
    template_id: str = ""
    sub_notification_id: str = ""
    # {our channel: {field: value}} from the inline content overrides.
    content: dict[str, dict[str, str]] = field(default_factory=dict)
    email_options: EmailOptions = field(default_factory=EmailOptions)


@dataclass(frozen=True)
class Preference:
    notification_type: str
    channel: str  # ours, or "" for every channel
    sub_notification_id: str
    delivery: str


def _object(value: Any, name: str) -> dict:
    if not isinstance(value, Mapping):
        raise RequestInvalid(f"{name} must be a JSON object, got {_kind(value)}.")
    return dict(value)


def _kind(value: Any) -> str:
    return {
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "an array",
        type(None): "null",
    }.get(type(value), "an object" if isinstance(value, Mapping) else type(value).__name__)


def _string(value: Any, name: str, *, required: bool = False, max_length: int = 0) -> str:
    if value is None or (value == "" and not required):
        if required:
            raise RequestInvalid(f"{name} is required: send it as a non-empty string.")
        return ""
    if not isinstance(value, str):
        raise RequestInvalid(f"{name} must be a string, got {_kind(value)}.")
    if required and not value.strip():
        raise RequestInvalid(f"{name} is required: send it as a non-empty string.")
    if max_length and len(value) > max_length:
        raise RequestInvalid(f"{name} is longer than {max_length} characters.")
    return value


def _email(value: Any, name: str) -> str:
    address = _string(value, name, max_length=320).strip()
    if address:
        try:
            validate_email(address)
        except ValidationError:
            raise RequestInvalid(
                f"{name} {address!r} is not an email address: send e.g. alice@example.com."
            ) from None
    return address


def _email_list(value: Any, name: str, *, at_most: tuple[int, str] | None = None) -> list[str]:
    """`at_most`: (the most addresses allowed, the setting that says so)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestInvalid(f"{name} must be an array of email addresses.")
    if at_most is not None and len(value) > at_most[0]:
        raise RequestInvalid(
            f"{name} has {len(value)} addresses; at most {at_most[0]} are allowed "
            f"({at_most[1]}). Send one notification per recipient instead."
        )
    return [_email(item, f"{name}[{index}]") for index, item in enumerate(value)]


def _number(value: Any, name: str) -> str:
    raw = _string(value, name, max_length=64).strip()
    if not raw:
        return ""
    try:
        return phone_normalize(raw)
    except ValueError as exc:
        raise RequestInvalid(f"{name}: {exc}") from None


def _timezone(value: Any, name: str) -> str:
    zone = _string(value, name, max_length=64).strip()
    if zone:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise RequestInvalid(
                f"{name} {zone!r} is not an IANA time zone: send e.g. America/New_York."
            ) from None
    return zone


def _token_list(value: Any, name: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise RequestInvalid(f"{name} must be an array of objects (reference section 7).")
    return list(value)


def channel_parse(value: Any, name: str) -> str:
    """Our channel value for a NotificationAPI channel name (EMAIL, SMS, ...)."""
    if isinstance(value, str) and value.upper() in CHANNEL_FROM_WIRE:
        return CHANNEL_FROM_WIRE[value.upper()]
    raise RequestInvalid(
        f"{name}: unknown channel {value!r}; use one of {', '.join(CHANNEL_FROM_WIRE)}."
    )


def schedule_parse(value: Any, name: str = "schedule") -> datetime | None:
    """An ISO-8601 time with a zone, in UTC; None when absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RequestInvalid(f"{name} must be an ISO-8601 string, got {_kind(value)}.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RequestInvalid(
            f"{name} {value!r} is not an ISO-8601 time: send e.g. 2024-02-20T14:38:03.509Z."
        ) from None
    if moment.tzinfo is None:
        raise RequestInvalid(
            f"{name} {value!r} has no time zone: add Z or an offset, e.g. 2024-02-20T14:38:03Z."
        )
    return moment.astimezone(UTC)


def recipient_parse(value: Any, name: str) -> Recipient:
    user = _object(value, name)
    return Recipient(
        user_id=_string(user.get("id"), f"{name}.id", required=True, max_length=MAX_ID_LENGTH),
        email=_email(user.get("email"), f"{name}.email"),
        number=_number(user.get("number"), f"{name}.number"),
        timezone=_timezone(user.get("timezone"), f"{name}.timezone"),
        push_tokens=_token_list(user.get("pushTokens"), f"{name}.pushTokens"),
        web_push_tokens=_token_list(user.get("webPushTokens"), f"{name}.webPushTokens"),
    )


def _either(body: dict, classic: str, newer: str) -> tuple[Any, str]:
    """The value of a field that has two spellings, and the name the caller used."""
    if classic in body and newer in body and body[classic] != body[newer]:
        raise RequestInvalid(f"Send either {classic} or {newer}, not both with different values.")
    if newer in body and classic not in body:
        return body[newer], newer
    return body.get(classic), classic


def _merge_tags(body: dict) -> dict[str, Any]:
    value, name = _either(body, "mergeTags", "parameters")
    if value is None:
        return {}
    return _object(value, name)


def _replace(body: dict) -> dict[str, str]:
    if body.get("replace") is None:
        return {}
    replace = _object(body["replace"], "replace")
    for key, value in replace.items():
        if not isinstance(value, str):
            raise RequestInvalid(f"replace[{key!r}] must be a string, got {_kind(value)}.")
    return replace


def _force_channels(body: dict) -> tuple[str, ...] | None:
    value = body.get("forceChannels")
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise RequestInvalid('forceChannels must be a non-empty array of channels, e.g. ["EMAIL"].')
    channels = [channel_parse(item, f"forceChannels[{i}]") for i, item in enumerate(value)]
    return tuple(dict.fromkeys(channels))


# Inline fields rendered as Liquid templates (the others, e.g. the sender, are taken as given).
TEMPLATE_PARTS = frozenset({"subject", "html", "text", "url", "image"})


def _template(value: Any, name: str) -> str:
    """An inline template: checked for size and syntax now, so a bad one is a 400 naming the
    field rather than a Failed event later (the render itself is fenced at dispatch)."""
    source = _string(value, name)
    try:
        template_check(source)
    except ValueError as exc:
        raise RequestInvalid(f"{name} {exc}.") from None
    return source


def _content(body: dict) -> dict[str, dict[str, str]]:
    content: dict[str, dict[str, str]] = {}
    for key, (channel, fields) in INLINE_CONTENT.items():
        if body.get(key) is None:
            continue
        given = _object(body[key], key)
        content[channel] = {
            ours: (_template if ours in TEMPLATE_PARTS else _string)(
                given.get(theirs), f"{key}.{theirs}"
            )
            for theirs, ours in fields.items()
            if given.get(theirs) is not None
        }
    return content


def _email_options(body: dict) -> EmailOptions:
    options = body.get("options")
    if options is None:
        return EmailOptions()
    options = _object(options, "options")
    if options.get("email") is None:
        return EmailOptions()
    email = _object(options["email"], "options.email")
    return EmailOptions(
        reply_to=_email_list(email.get("replyToAddresses"), "options.email.replyToAddresses"),
        cc=_email_list(
            email.get("ccAddresses"),
            "options.email.ccAddresses",
            at_most=(settings.SEND_EMAIL_MAX_CC, "SEND_EMAIL_MAX_CC"),
        ),
        bcc=_email_list(
            email.get("bccAddresses"),
            "options.email.bccAddresses",
            at_most=(settings.SEND_EMAIL_MAX_BCC, "SEND_EMAIL_MAX_BCC"),
        ),
        from_name=_string(email.get("fromName"), "options.email.fromName", max_length=200),
        from_address=_email(email.get("fromAddress"), "options.email.fromAddress"),
    )


def send_request_parse(body: Any) -> SendRequest:
    """A SendRequest from a decoded JSON body, or RequestInvalid naming the field."""
    body = _object(body, "The request body")
    notification_type, type_name = _either(body, "notificationId", "type")
    user, user_name = _either(body, "user", "to")
    if user is None:
        raise RequestInvalid('user is required: send {"user": {"id": "..."}} (or "to").')
    sub_notification_id, sub_name = _either(body, "subNotificationId", "secondaryId")
    return SendRequest(
        notification_type=_string(
            notification_type, type_name, required=True, max_length=MAX_TYPE_LENGTH
        ),
        recipient=recipient_parse(user, user_name),
        merge_tags=_merge_tags(body),
        replace=_replace(body),
        force_channels=_force_channels(body),
        schedule=schedule_parse(body.get("schedule")),
        template_id=_string(body.get("templateId"), "templateId", max_length=MAX_ID_LENGTH),
        sub_notification_id=_string(sub_notification_id, sub_name, max_length=MAX_ID_LENGTH),
        content=_content(body),
        email_options=_email_options(body),
    )


@dataclass(frozen=True)
class ScheduleUpdate:
    schedule: datetime | None
    merge_tags: dict[str, Any] | None


def schedule_update_parse(body: Any) -> ScheduleUpdate:
    """update_schedule's partial SendRequest: a new time and/or new merge tags."""
    body = _object(body, "The request body")
    merge_tags = _merge_tags(body) if ("mergeTags" in body or "parameters" in body) else None
    schedule = schedule_parse(body.get("schedule"))
    if schedule is None and merge_tags is None:
        raise RequestInvalid("Send schedule (an ISO-8601 time) and/or mergeTags to change.")
    return ScheduleUpdate(schedule=schedule, merge_tags=merge_tags)


def preference_parse(value: Any, name: str) -> Preference:
    item = _object(value, name)
    channel = item.get("channel")
    delivery = item.get("delivery")
    if delivery is None and "state" in item:
        # Legacy SDKs (older Node, Go, C#) send a boolean `state` instead of `delivery`.
        if not isinstance(item["state"], bool):
            raise RequestInvalid(f"{name}.state must be true or false.")
        delivery = "instant" if item["state"] else "off"
    if delivery is None:
        delivery = "instant"
    if delivery not in DELIVERY_VALUES:
        raise RequestInvalid(
            f"{name}.delivery {delivery!r} is not a delivery value: use one of "
            f"{', '.join(DELIVERY_VALUES)}."
        )
    return Preference(
        notification_type=_string(
            item.get("notificationId"),
            f"{name}.notificationId",
            required=True,
            max_length=MAX_TYPE_LENGTH,
        ),
        channel="" if channel in (None, "") else channel_parse(channel, f"{name}.channel"),
        sub_notification_id=_string(
            item.get("subNotificationId"), f"{name}.subNotificationId", max_length=MAX_ID_LENGTH
        ),
        delivery=delivery,
    )


def preferences_parse(body: Any) -> list[Preference]:
    if not isinstance(body, list):
        raise RequestInvalid(
            "The body must be a JSON array of preferences, e.g. "
            '[{"notificationId": "order_tracking", "channel": "EMAIL", "delivery": "off"}].'
        )
    return [preference_parse(item, f"[{index}]") for index, item in enumerate(body)]


def identify_parse(body: Any, user_id: str) -> Recipient:
    """identify_user's body: the user without `id` (the id is in the URL)."""
    user = _object(body, "The request body")
    if user.get("id") not in (None, user_id):
        raise RequestInvalid("id in the body differs from the user id in the URL: drop it.")
    return recipient_parse({**user, "id": user_id}, "user")


@dataclass(frozen=True)
class InAppUpdate:
    tracking_ids: list[str]
    # {"opened": when, "clicked": when, "archived": when, ...}
    moments: dict[str, datetime]


IN_APP_MOMENTS = ("opened", "clicked", "archived", "actioned1", "actioned2")


def in_app_update_parse(body: Any) -> InAppUpdate:
    body = _object(body, "The request body")
    ids = body.get("trackingIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise RequestInvalid("trackingIds is required: a non-empty array of tracking ids.")
    moments = {}
    for name in IN_APP_MOMENTS:
        moment = schedule_parse(body.get(name), name)
        if moment is not None:
            moments[name] = moment
    return InAppUpdate(tracking_ids=ids, moments=moments)
