"""Twilio status callbacks for SMS and voice: authentication with the `twilio` package's
RequestValidator, and the mapping of MessageStatus / CallStatus to timeline events.

The signature covers the URL exactly as Twilio called it, so the URL is rebuilt from
PUBLIC_BASE_URL (the address Twilio was given), never from the Host header a proxy rewrote.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from accounts.models import Environment
from logs.vocabulary import Channel, EventKind, EventSubKind
from notifications.selectors import TwilioCredentialsUnreadable, twilio_account_for
from webhooks.events import CallbackEvent, UnparseableCallback
from webhooks.receivers.base import (
    UnknownEnvironment,
    body_too_large,
    callback_environment,
    callback_refused,
    callback_store,
    too_large_response,
)

SOURCE = "twilio"

# MessageStatus -> (kind, sub-kind). None: a step before the outcome, not a timeline event.
# Twilio sends no callback for the initial status (queued/accepted/scheduled), but a
# messaging service may; they are accepted and recorded as nothing.
SMS_STATUSES: dict[str, tuple[str, str] | None] = {
    "queued": None,
    "accepted": None,
    "scheduled": None,
    "sending": None,
    "receiving": None,  # inbound message states: not ours to record
    "received": None,
    "sent": (EventKind.SENT, ""),
    "delivered": (EventKind.DELIVERED, ""),
    "read": (EventKind.DELIVERED, ""),  # read receipts (WhatsApp, RCS) imply delivery
    "partially_delivered": (EventKind.DELIVERED, ""),  # some segments reached the handset
    "undelivered": (EventKind.FAILED, EventSubKind.UNDELIVERED),  # the carrier refused it
    "failed": (EventKind.FAILED, ""),  # refined by the error code (sms_failed_sub_kind)
    "canceled": (EventKind.FAILED, ""),  # a scheduled message canceled before sending
}

# CallStatus -> (kind, sub-kind).
CALL_STATUSES: dict[str, tuple[str, str] | None] = {
    "queued": None,
    "initiated": None,
    "ringing": (EventKind.SENT, ""),
    "in-progress": (EventKind.SENT, ""),
    "completed": (EventKind.DELIVERED, EventSubKind.COMPLETED),
    "busy": (EventKind.DELIVERED, EventSubKind.BUSY),
    "no-answer": (EventKind.DELIVERED, EventSubKind.NO_ANSWER),
    "failed": (EventKind.FAILED, EventSubKind.CANNOT_REACH),
    "canceled": (EventKind.FAILED, ""),
}


# What Twilio calls the error codes its callbacks carry most often (its Error and Warning
# Dictionary, https://www.twilio.com/docs/api/errors). WORKAROUND: a status callback carries
# ErrorCode but seldom ErrorMessage, and a bare "30003" tells support staff nothing.
TWILIO_ERROR_DESCRIPTIONS = {
    "21211": "Invalid 'To' phone number",
    "21408": "Permission to send an SMS has not been enabled for the region of the 'To' number",
    "21610": "Attempt to send to unsubscribed recipient",
    "21612": "The 'To' phone number is not currently reachable via SMS",
    "21614": "'To' number is not a valid mobile number",
    "30001": "Queue overflow",
    "30002": "Account suspended",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered (carrier violation)",
    "30008": "Unknown error",
    "30009": "Missing segment",
    "30010": "Message price exceeds max price",
    "30034": "Message from an unregistered number (US A2P 10DLC)",
}


def twilio_error_description(error_code: str, error_message: str = "") -> str:
    """The words for a Twilio error code: Twilio's own ErrorMessage when the callback has one,
    else the dictionary's, else where to look it up; "" without a code."""
    if error_message or not error_code:
        return error_message
    return TWILIO_ERROR_DESCRIPTIONS.get(
        error_code, f"see https://www.twilio.com/docs/api/errors/{error_code}"
    )


def twilio_auth_token(*, environment: Environment | None) -> str:
    """The token Twilio signs callbacks of `environment` with: the environment's own (set in
    the console, Twilio credentials) when it has one, else the install's TWILIO_AUTH_TOKEN
    (also for None, a callback URL that names no environment).

    The one place that chooses the token. Only that one is tried: a callback to an
    environment with its own Twilio account, signed with the install's token, is refused.
    Raises TwilioCredentialsUnreadable when the stored token cannot be decrypted."""
    return twilio_account_for(environment=environment).auth_token


def twilio_public_url(path: str) -> str:
    """The URL Twilio called: PUBLIC_BASE_URL plus the path and query string we received."""
    return settings.PUBLIC_BASE_URL + path


def twilio_signature_valid(request: HttpRequest, *, token: str) -> bool:
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return False
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    validator = RequestValidator(token)
    return validator.validate(
        twilio_public_url(request.get_full_path()), request.POST, signature, algorithm=algorithm
    )


@method_decorator(csrf_exempt, name="dispatch")
class TwilioReceiver(View):
    """POST /webhooks/twilio/sms/ and /webhooks/twilio/voice/: authenticate, store, 200."""

    http_method_names = ["post"]
    provider = ""  # set by the subclasses: the inbox's provider name

    def post(self, request: HttpRequest) -> HttpResponse:
        if body_too_large(request):
            return too_large_response()
        try:
            # Its own Twilio credentials come in the same query (twilio_auth_token reads them).
            environment = callback_environment(request, related=("twilio_credentials",))
        except UnknownEnvironment:
            return callback_refused(
                request,
                provider=self.provider,
                reason="The env parameter names no environment.",
                status=403,
            )
        try:
            token = twilio_auth_token(environment=environment)
        except TwilioCredentialsUnreadable as exc:
            return callback_refused(request, provider=self.provider, reason=str(exc), status=503)
        if not token:
            return callback_refused(
                request,
                provider=self.provider,
                reason="Twilio callbacks are not configured: set TWILIO_AUTH_TOKEN, or the "
                "environment's Twilio credentials in the console.",
                status=503,
            )
        if not twilio_signature_valid(request, token=token):
            return callback_refused(
                request,
                provider=self.provider,
                reason="Missing or invalid X-Twilio-Signature.",
                status=403,
            )
        return callback_store(request, provider=self.provider, environment=environment)


class TwilioSmsReceiver(TwilioReceiver):
    provider = "twilio_sms"


class TwilioVoiceReceiver(TwilioReceiver):
    provider = "twilio_voice"


# Parsing (at processing time, from the stored body).


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnparseableCallback("The body is not UTF-8 form data.") from None
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _required(form: Mapping[str, str], *names: str) -> str:
    for name in names:
        if form.get(name):
            return form[name]
    raise UnparseableCallback(f"The callback has no {' or '.join(names)}.")


def sms_failed_sub_kind(error_code: str) -> str:
    # Error codes 30001-30009 are Twilio's and the carriers' infrastructure (queue overflow,
    # account suspended, unreachable handset, ...): Failed - Infrastructure. Other codes (bad
    # parameters, a blocked number) are failures of the message itself, with no sub-kind.
    if error_code.isdigit() and 30000 <= int(error_code) <= 30009:
        return EventSubKind.INFRASTRUCTURE
    return ""


def _event_id(sid: str, status: str, form: Mapping[str, str]) -> str:
    # Twilio gives status callbacks no id of their own: the sid and the status name one, and
    # SequenceNumber tells apart two callbacks of one call with the same status.
    sequence = form.get("SequenceNumber", "")
    return f"{sid}:{status}:{sequence}" if sequence else f"{sid}:{status}"


def _detail(status: str, error_code: str, error_message: str) -> str:
    """`error_message`: twilio_error_description's, so a code never shows without words."""
    detail = f"Twilio: {status}"
    if error_code:
        detail += f" (error {error_code}: {error_message})"
    return detail


def twilio_sms_events(body: bytes, *, received_at: datetime) -> list[CallbackEvent]:
    form = _form(body)
    sid = _required(form, "MessageSid", "SmsSid")
    status = _required(form, "MessageStatus", "SmsStatus")
    if status not in SMS_STATUSES:
        raise UnparseableCallback(f"Unknown MessageStatus {status[:40]!r}.")
    mapped = SMS_STATUSES[status]
    error_code = form.get("ErrorCode", "")
    error_message = twilio_error_description(error_code, form.get("ErrorMessage", ""))
    kind, sub_kind = mapped or (None, "")
    if status == "failed":
        sub_kind = sms_failed_sub_kind(error_code)
    return [
        CallbackEvent(
            channel=Channel.SMS,
            provider_message_id=sid,
            kind=kind,
            sub_kind=sub_kind,
            # WORKAROUND: SMS status callbacks carry no time; when we received it is the
            # closest honest time (and stays the same when the row is processed again).
            occurred_at=received_at,
            provider_event_id=_event_id(sid, status, form),
            detail=_detail(status, error_code, error_message),
            payload=form,
            error_code=error_code,
            error_message=error_message,
        )
    ]


def _call_time(form: Mapping[str, str], received_at: datetime) -> datetime:
    try:
        stamp = parsedate_to_datetime(form.get("Timestamp", ""))
    except (TypeError, ValueError):
        return received_at
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def twilio_voice_events(body: bytes, *, received_at: datetime) -> list[CallbackEvent]:
    form = _form(body)
    sid = _required(form, "CallSid")
    status = _required(form, "CallStatus")
    if status not in CALL_STATUSES:
        raise UnparseableCallback(f"Unknown CallStatus {status[:40]!r}.")
    kind, sub_kind = CALL_STATUSES[status] or (None, "")
    error_code = form.get("ErrorCode", "")
    error_message = twilio_error_description(error_code, form.get("ErrorMessage", ""))
    return [
        CallbackEvent(
            channel=Channel.CALL,
            provider_message_id=sid,
            kind=kind,
            sub_kind=sub_kind,
            occurred_at=_call_time(form, received_at),
            provider_event_id=_event_id(sid, status, form),
            detail=_detail(status, error_code, error_message),
            payload=form,
            error_code=error_code,
            error_message=error_message,
        )
    ]
