"""Email tracking callbacks through django-anymail, for every ESP it supports.

anymail's own tracking views authenticate (WEBHOOK_SECRET basic auth; Mailgun's and
SendGrid's signatures when their keys are set), parse and fire a signal, all inside the
ESP's request. Here each of them is wrapped so that the request only authenticates (with
anymail's validators, unchanged) and is stored raw in the inbox; anymail's parser runs later,
in processing, on the stored request (`email_events`). The wrapped views are routed before
`include("anymail.urls")`, which still serves anymail's inbound endpoints.
"""

from datetime import UTC, datetime
from functools import cache

import anymail.urls
from anymail.exceptions import (
    AnymailConfigurationError,
    AnymailError,
    AnymailWebhookValidationFailure,
)
from anymail.signals import AnymailTrackingEvent, EventType, tracking
from anymail.webhooks.amazon_ses import AmazonSESBaseWebhookView
from anymail.webhooks.base import AnymailBasicAuthMixin
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import URLPattern, path

from logs.vocabulary import Channel, EventKind, EventSubKind
from webhooks.events import CallbackEvent, UnparseableCallback, provider_words
from webhooks.receivers.base import (
    UnknownEnvironment,
    body_too_large,
    callback_environment,
    callback_refused,
    callback_store,
    too_large_response,
)

# anymail's normalised event_type -> (kind, sub-kind); None: not a timeline event.
EMAIL_EVENTS: dict[str, tuple[str, str] | None] = {
    EventType.QUEUED: None,  # the ESP will try later: Sent comes from the send itself
    EventType.SENT: (EventKind.SENT, ""),
    EventType.DELIVERED: (EventKind.DELIVERED, ""),
    EventType.BOUNCED: (EventKind.FAILED, EventSubKind.BOUNCE),
    EventType.DEFERRED: (EventKind.FAILED, EventSubKind.DELIVERY_DELAY),  # retried by the ESP
    EventType.REJECTED: (EventKind.FAILED, ""),  # refused before sending; reason kept
    EventType.FAILED: (EventKind.FAILED, ""),
    EventType.OPENED: (EventKind.ENGAGEMENT, EventSubKind.OPENED),
    EventType.CLICKED: (EventKind.ENGAGEMENT, EventSubKind.CLICKED),
    EventType.COMPLAINED: (EventKind.ENGAGEMENT, EventSubKind.COMPLAINED),
    EventType.UNSUBSCRIBED: (EventKind.ENGAGEMENT, EventSubKind.UNSUBSCRIBED),
    EventType.AUTORESPONDED: None,  # an out-of-office reply says nothing about delivery
    EventType.SUBSCRIBED: None,
    EventType.UNKNOWN: None,
}


class AnymailInboxMixin:
    """Put before an anymail tracking view: authenticate with its validators, store raw."""

    provider = ""  # anymail's ESP key ("postmark", "amazon_ses", ...)
    configuration_error: AnymailConfigurationError | None = None

    def __init__(self, **kwargs):
        try:
            super().__init__(**kwargs)
        except AnymailConfigurationError as exc:
            # e.g. Mailgun without MAILGUN_WEBHOOK_SIGNING_KEY: answered 503 below, never a
            # 500, and the ESP retries until it is configured.
            self.configuration_error = exc

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if body_too_large(request):
            return too_large_response()
        if self.configuration_error is not None:
            return self._refuse(request, str(self.configuration_error).splitlines()[0], 503)
        if not self.basic_auth:
            return self._refuse(
                request, "Email callbacks are not configured: set ANYMAIL_WEBHOOK_SECRET.", 503
            )
        if isinstance(self, AmazonSESBaseWebhookView) and not request.headers.get("Authorization"):
            # WORKAROUND: Amazon SNS sends basic auth only after a 401 challenge (as anymail's
            # own SES view answers).
            response = HttpResponse(status=401)
            response["WWW-Authenticate"] = 'Basic realm="Anymail WEBHOOK_SECRET"'
            return response
        try:
            environment = callback_environment(request)
        except UnknownEnvironment:
            return self._refuse(request, "The env parameter names no environment.", 400)
        try:
            authentic = self._authentic(request)
        except AnymailConfigurationError as exc:
            # A setting some validators ask for only when they run (Mandrill's key).
            return self._refuse(request, str(exc).splitlines()[0], 503)
        if not authentic:
            return self._refuse(request, "Missing or invalid webhook authentication.", 400)
        return callback_store(request, provider=self.provider, environment=environment)

    def _authentic(self, request: HttpRequest) -> bool:
        try:
            self.run_validators(request)
        except AnymailWebhookValidationFailure:
            return False
        except AnymailConfigurationError:
            raise
        except AnymailError:
            # A validator could not read the body (SES parses it to compare SNS headers).
            # Authentic if its credentials are: then it is stored, and processing marks it
            # unparseable for staff to see.
            try:
                AnymailBasicAuthMixin.validate_request(self, request)
            except AnymailWebhookValidationFailure:
                return False
        return True

    def _refuse(self, request: HttpRequest, reason: str, status: int) -> HttpResponse:
        # anymail answers a failed authentication with 400 (SuspiciousOperation).
        return callback_refused(request, provider=self.provider, reason=reason, status=status)


def _tracking_routes() -> list[tuple[str, str, type]]:
    """(route, ESP key, anymail view class) of every anymail tracking endpoint."""
    routes = []
    for pattern in anymail.urls.urlpatterns:
        route = str(pattern.pattern)
        view_class = getattr(pattern.callback, "view_class", None)
        if view_class is None or "inbound" in route:
            continue
        # Mandrill's single endpoint decides per batch (signal None on the class).
        if view_class.signal not in (tracking, None):
            continue
        routes.append((route, route.split("/")[0], view_class))
    return routes


@cache
def email_receiver_class(esp: str) -> type:
    """Our storing subclass of anymail's tracking view for `esp`."""
    for _, key, view_class in _tracking_routes():
        if key == esp:
            name = f"{view_class.__name__}Inbox"
            return type(name, (AnymailInboxMixin, view_class), {"provider": esp})
    raise LookupError(f"django-anymail has no tracking webhook for {esp!r}.")


def email_urlpatterns() -> list[URLPattern]:
    return [
        path(route, email_receiver_class(key).as_view(), name=f"{key}_tracking_inbox")
        for route, key, _ in _tracking_routes()
    ]


def email_providers() -> list[str]:
    return sorted({key for _, key, _ in _tracking_routes()})


# Parsing (at processing time, from the stored request).


def _stored_request(body: bytes, path: str, headers: dict[str, str]) -> HttpRequest:
    """The stored callback as a Django request again, for anymail's parsers."""
    request = HttpRequest()
    request.method = "POST"
    request.path = request.path_info = path.split("?", 1)[0]
    request.GET = QueryDict(path.split("?", 1)[1] if "?" in path else "")
    request._body = body
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            request.META[key] = value
        else:
            request.META[f"HTTP_{key}"] = value
    content_type = request.META.get("CONTENT_TYPE", "")
    request.content_type = content_type.split(";", 1)[0].strip().lower()
    request.content_params = {}
    return request


def _aware(moment: datetime | None, fallback: datetime) -> datetime:
    if moment is None:
        return fallback
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ses_delivery_delay(event: AnymailTrackingEvent) -> bool:
    # WORKAROUND: anymail 15.1 normalises Amazon SES's DeliveryDelay event to "unknown"; it
    # is SES's deferral (the message is retried), i.e. Failed - Delivery Delay.
    esp_event = event.esp_event
    return isinstance(esp_event, dict) and esp_event.get("eventType") == "DeliveryDelay"


def _email_event(event: AnymailTrackingEvent, received_at: datetime) -> CallbackEvent | None:
    if not event.message_id:
        raise UnparseableCallback(f"A {event.event_type} event has no message id.")
    mapped = EMAIL_EVENTS.get(event.event_type)
    if event.event_type == EventType.UNKNOWN and _ses_delivery_delay(event):
        mapped = EMAIL_EVENTS[EventType.DEFERRED]
    kind, sub_kind = mapped or (None, "")
    # Each of the provider's words once: anymail's reject reason often repeats the event type
    # ("bounced: bounced ...") and Postmark's Description the start of its Details.
    reason = provider_words(
        event.reject_reason,
        event.description,
        event.mta_response,
        already_said=(event.event_type,),
    )
    return CallbackEvent(
        channel=Channel.EMAIL,
        provider_message_id=str(event.message_id),
        kind=kind,
        sub_kind=sub_kind,
        occurred_at=_aware(event.timestamp, received_at),
        provider_event_id=str(event.event_id or ""),
        detail=f"{event.event_type}{': ' + reason[:500] if reason else ''}",
        payload=event.esp_event if isinstance(event.esp_event, dict | list) else None,
        error_code=str(event.reject_reason or "") if kind == EventKind.FAILED else "",
        error_message=reason[:1000] if kind == EventKind.FAILED else "",
    )


def email_events(
    esp: str, *, body: bytes, path: str, headers: dict[str, str], received_at: datetime
) -> list[CallbackEvent]:
    view = email_receiver_class(esp)()
    if view.configuration_error is not None:
        raise UnparseableCallback(str(view.configuration_error).splitlines()[0])
    try:
        parsed = view.parse_events(_stored_request(body, path, headers))
    except (ValueError, KeyError, TypeError, AttributeError, AnymailError) as exc:
        raise UnparseableCallback(
            f"anymail could not parse this {esp} callback ({type(exc).__name__})."
        ) from None
    events = []
    for event in parsed:
        if isinstance(event, AnymailTrackingEvent):
            events.append(_email_event(event, received_at))
    return events
