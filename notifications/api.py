"""The NotificationAPI-compatible endpoints (`/{clientId}/...`, what the official server SDKs
call) and the native `POST /api/v1/notifications`. Views authenticate, parse the body with
notifications.wire, call one service and answer; every refusal is JSON with a `message`."""

import json
import uuid

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import (
    AuthenticationFailed,
    Credentials,
    EnvironmentAuthentication,
    credentials_from_request,
    scope_required,
)
from accounts.models import ApiKey
from config.throttling import SendRateThrottle, UserRateThrottle
from notifications import openapi
from notifications.services import end_users, in_app, schedules, sends
from notifications.wire import (
    RequestInvalid,
    identify_parse,
    in_app_update_parse,
    preferences_parse,
    schedule_update_parse,
    send_request_parse,
)

MAX_BODY_BYTES = 1024 * 1024
IDEMPOTENCY_KEY_MAX = 255
# The one size limit of these bodies: the whole JSON body, mergeTags and inline content
# together (NotificationAPI's "mergeTags under 150 KB" is advice, not a limit enforced here).
_TOO_BIG = (
    f"The body is over {MAX_BODY_BYTES:,} bytes (1 MB), the most one request may send: "
    "mergeTags, inline content and every other field count together. Send less."
)


def _error(message: str, status_code: int) -> Response:
    return Response({"message": message}, status=status_code)


def _json_body(request, *, required: bool = True):
    """The decoded JSON body, whatever the Content-Type (the SDKs always send JSON)."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        raise RequestInvalid(_TOO_BIG)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise RequestInvalid(_TOO_BIG) from None
    if len(raw) > MAX_BODY_BYTES:  # a chunked body says no length up front
        raise RequestInvalid(_TOO_BIG)
    if not raw.strip():
        if required:
            raise RequestInvalid("The body is empty: send a JSON object.")
        return {}
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestInvalid(f"The body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise RequestInvalid("The body is nested too deeply: flatten it.") from None
    _refuse_nul(body)
    return body


def _refuse_constant(name: str):
    # WORKAROUND: Python's json accepts NaN and Infinity, which are not JSON and which
    # PostgreSQL's jsonb refuses; say so instead of failing at the insert.
    raise ValueError(f"{name} is not a JSON value")


def _refuse_nul(value, depth: int = 0) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000: refuse it where the caller can fix it."""
    if isinstance(value, str):
        if "\x00" in value:
            raise RequestInvalid("The body contains a NUL character (\\u0000): remove it.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, depth + 1)
            _refuse_nul(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _refuse_nul(item, depth + 1)


def _path_id(value: str, name: str, max_length: int = 255) -> str:
    """An id from the URL: not empty, not too long for its column, no NUL."""
    if not value or len(value) > max_length or "\x00" in value:
        raise RequestInvalid(f"The {name} in the URL must be 1 to {max_length} characters.")
    return value


class _UserHashAuthentication(EnvironmentAuthentication):
    """Also admits NotificationAPI's user-hash credential (an end user's app calls these)."""

    def authenticate(self, request):
        client_id = request.parser_context["kwargs"].get("client_id")
        try:
            credentials = credentials_from_request(
                request, client_id=client_id, allow_user_hash=True
            )
        except AuthenticationFailed as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None
        return credentials, credentials


class _SameUserOrSendScope:
    """The user hash of the user in the URL, or a server credential with the send scope."""

    message = (
        "This credential is for another user: use the user hash of the user in the URL, or "
        "the client secret."
    )

    def has_permission(self, request, view):
        credentials = request.auth
        if not isinstance(credentials, Credentials):
            return False
        if credentials.user_id is not None:
            return credentials.user_id == view.kwargs.get("user_id")
        return credentials.has_scope(ApiKey.Scope.SEND)

    def has_object_permission(self, request, view, obj):
        return True


# URL ids and the longest each column holds.
_PATH_IDS = {"user_id": 255, "notification_id": 100, "sub_notification_id": 255}


# The services' and parser's own refusals and their statuses (DRF and plain views alike).
_REFUSAL_STATUS = {
    RequestInvalid: status.HTTP_400_BAD_REQUEST,
    sends.NotFound: status.HTTP_404_NOT_FOUND,
    sends.Conflict: status.HTTP_409_CONFLICT,
}
_REFUSALS = tuple(_REFUSAL_STATUS)


def _refusal_status(exc: Exception) -> int | None:
    return next((code for kind, code in _REFUSAL_STATUS.items() if isinstance(exc, kind)), None)


class _SendView(APIView):
    permission_classes = [scope_required(ApiKey.Scope.SEND)]
    throttle_classes = [SendRateThrottle]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        for name, max_length in _PATH_IDS.items():
            if name in kwargs:
                _path_id(kwargs[name], name.replace("_", " "), max_length)

    def handle_exception(self, exc):
        # The services' and parser's own refusals, answered the API's way.
        if (status_code := _refusal_status(exc)) is not None:
            return _error(str(exc), status_code)
        return super().handle_exception(exc)


class _UserView(_SendView):
    authentication_classes = [_UserHashAuthentication]
    permission_classes = [_SameUserOrSendScope]
    throttle_classes = [UserRateThrottle]


class _PlainPost(_SendView):
    """A send answered without DRF's request and response machinery (content negotiation,
    the Request wrapper, the renderer): about a fifth of a send's CPU. The same credentials,
    scope and answers as through DRF; other methods (405, OPTIONS) still go through DRF, as
    does the OpenAPI schema, which reads the class."""

    def dispatch(self, request, *args, **kwargs):
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        try:
            credentials = credentials_from_request(request, client_id=kwargs.get("client_id"))
        except AuthenticationFailed as exc:
            response = JsonResponse({"message": exc.message}, status=401)
            response["WWW-Authenticate"] = EnvironmentAuthentication().authenticate_header(request)
            return response
        if not credentials.has_scope(ApiKey.Scope.SEND):
            return JsonResponse({"message": self.permission_classes[0].message}, status=403)
        if (throttled := SendRateThrottle().refusal_response(credentials)) is not None:
            return throttled  # 429 with Retry-After, before the body is read
        request.auth = credentials  # as DRF's Request has it (read by _send)
        try:
            return self.post_plain(request)
        except _REFUSALS as exc:
            return JsonResponse({"message": str(exc)}, status=_refusal_status(exc))

    def post_plain(self, request) -> JsonResponse:
        raise NotImplementedError


def _send(request, *, source: str) -> sends.SendAccepted:
    body = _json_body(request)
    send_request = send_request_parse(body)
    key = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise RequestInvalid(f"Idempotency-Key is longer than {IDEMPOTENCY_KEY_MAX} characters.")
    return sends.notification_send(
        environment=request.auth.environment,
        send_request=send_request,
        raw_request=body,
        idempotency_key=key,
        source=source,
    )


class SenderView(_PlainPost):
    """`POST /{clientId}/sender`: NotificationAPI's send()."""

    @extend_schema(
        operation_id="sender",
        summary="Send a notification (NotificationAPI-compatible)",
        description=openapi.SEND_DESCRIPTION,
        tags=["send"],
        parameters=[openapi.CLIENT_ID, openapi.IDEMPOTENCY_KEY],
        request={"application/json": openapi.SendSerializer},
        responses=openapi.SENDER_RESPONSES,
        examples=openapi.SENDER_EXAMPLES,
    )
    def post(self, request, client_id: str):  # for the schema; requests go to post_plain
        return self.post_plain(request)

    def post_plain(self, request) -> JsonResponse:
        accepted = _send(request, source="api")
        body = {"trackingId": str(accepted.notification_id)}
        if accepted.warnings:
            return JsonResponse({**body, "messages": accepted.warnings}, status=202)
        return JsonResponse(body, status=200)


class NotificationCreateView(_PlainPost):
    """`POST /api/v1/notifications`: the same send, answered the REST way."""

    @extend_schema(
        operation_id="notifications_create",
        summary="Send a notification",
        description=openapi.CREATE_DESCRIPTION,
        tags=["send"],
        parameters=[openapi.IDEMPOTENCY_KEY],
        request={"application/json": openapi.SendSerializer},
        responses=openapi.CREATE_RESPONSES,
        examples=openapi.CREATE_EXAMPLES,
    )
    def post(self, request):  # for the schema; requests go to post_plain
        return self.post_plain(request)

    def post_plain(self, request) -> JsonResponse:
        accepted = _send(request, source="api")
        tracking_id = str(accepted.notification_id)
        status_code = 200 if accepted.replayed else 201
        response = JsonResponse(
            {"trackingId": tracking_id, "messages": accepted.warnings}, status=status_code
        )
        response["Location"] = f"/api/v1/notifications/{tracking_id}"
        return response


def _tracking_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise sends.NotFound(f"{value!r} is not a tracking id (a UUID).") from None


class ScheduleView(_SendView):
    """`PATCH`/`DELETE /{clientId}/schedule/{trackingId}`."""

    @extend_schema(
        operation_id="schedule_update",
        summary="Move a scheduled send or change its merge tags",
        description=openapi.SCHEDULE_UPDATE_DESCRIPTION,
        tags=["send"],
        parameters=[openapi.CLIENT_ID, openapi.TRACKING_ID_PATH],
        request={"application/json": openapi.ScheduleUpdateSerializer},
        responses=openapi.TRACKING_ID_ANSWER | openapi.errors(400, 401, 403, 404, 409, 429),
        examples=[
            OpenApiExample(
                "move", value={"schedule": "2030-02-20T14:38:03.509Z"}, request_only=True
            )
        ],
    )
    def patch(self, request, client_id: str, tracking_id: str):
        update = schedule_update_parse(_json_body(request))
        schedules.schedule_update(
            environment=request.auth.environment,
            tracking_id=_tracking_id(tracking_id),
            update=update,
        )
        return Response({"trackingId": tracking_id})

    @extend_schema(
        operation_id="schedule_delete",
        summary="Cancel a scheduled send",
        description="Cancels a send that has not gone out (409 once it is due or sent).",
        tags=["send"],
        parameters=[openapi.CLIENT_ID, openapi.TRACKING_ID_PATH],
        responses=openapi.TRACKING_ID_ANSWER | openapi.errors(401, 403, 404, 409, 429),
    )
    def delete(self, request, client_id: str, tracking_id: str):
        schedules.schedule_delete(
            environment=request.auth.environment, tracking_id=_tracking_id(tracking_id)
        )
        return Response({"trackingId": tracking_id})


class RetractView(_SendView):
    """`POST /{clientId}/sender/retract`: remove in-app notifications of a type."""

    @extend_schema(
        operation_id="sender_retract",
        summary="Remove a user's in-app notifications of a type",
        description="NotificationAPI's `retract`: in-app only.",
        tags=["send"],
        parameters=[openapi.CLIENT_ID],
        request={"application/json": openapi.RetractSerializer},
        responses=openapi.RETRACT_ANSWER | openapi.errors(400, 401, 403, 429),
        examples=[
            OpenApiExample(
                "retract",
                value={"notificationId": "order_tracking", "userId": "usr_123"},
                request_only=True,
            )
        ],
    )
    def post(self, request, client_id: str):
        body = _json_body(request)
        if not isinstance(body, dict):
            raise RequestInvalid("The body must be a JSON object.")
        notification_type = body.get("notificationId")
        user_id = body.get("userId")
        for name, value in (("notificationId", notification_type), ("userId", user_id)):
            if not isinstance(value, str) or not value:
                raise RequestInvalid(f"{name} is required: send it as a non-empty string.")
        sub_id = body.get("subNotificationId") or body.get("secondaryId") or ""
        if not isinstance(sub_id, str):
            raise RequestInvalid("subNotificationId must be a string.")
        removed = in_app.in_app_retract(
            environment=request.auth.environment,
            notification_type=notification_type,
            user_id=user_id,
            sub_notification_id=sub_id,
        )
        return Response({"retracted": removed})


class SubNotificationView(_SendView):
    """`PUT`/`DELETE /{clientId}/notifications/{notificationId}/subNotifications/{id}`."""

    @extend_schema(
        operation_id="sub_notification_put",
        summary="Create or rename a sub-notification",
        description=openapi.SUB_NOTIFICATION_DESCRIPTION,
        tags=["send"],
        parameters=openapi.SUB_NOTIFICATION_PATH,
        request={"application/json": openapi.SubNotificationSerializer},
        responses=openapi.SUB_NOTIFICATION_ANSWER | openapi.errors(400, 401, 403, 404, 429),
        examples=[OpenApiExample("create", value={"title": "Project Apollo"}, request_only=True)],
    )
    def put(self, request, client_id: str, notification_id: str, sub_notification_id: str):
        body = _json_body(request, required=False)
        title = body.get("title", "") if isinstance(body, dict) else None
        if not isinstance(title, str):
            raise RequestInvalid("title must be a string.")
        end_users.sub_notification_put(
            environment=request.auth.environment,
            notification_type=notification_id,
            sub_notification_id=sub_notification_id,
            title=title,
        )
        return Response(
            {
                "notificationId": notification_id,
                "subNotificationId": sub_notification_id,
                "title": title,
            }
        )

    @extend_schema(
        operation_id="sub_notification_delete",
        summary="Delete a sub-notification",
        tags=["send"],
        parameters=openapi.SUB_NOTIFICATION_PATH,
        responses=openapi.SUB_NOTIFICATION_ANSWER | openapi.errors(401, 403, 404, 429),
    )
    def delete(self, request, client_id: str, notification_id: str, sub_notification_id: str):
        end_users.sub_notification_delete(
            environment=request.auth.environment,
            notification_type=notification_id,
            sub_notification_id=sub_notification_id,
        )
        return Response(
            {"notificationId": notification_id, "subNotificationId": sub_notification_id}
        )


class UserPreferencesView(_SendView):
    """`POST /{clientId}/user_preferences/{userId}`: a JSON array of preference objects."""

    @extend_schema(
        operation_id="user_preferences_set",
        summary="Set a user's preferences",
        description=openapi.PREFERENCES_DESCRIPTION,
        tags=["users"],
        parameters=[openapi.CLIENT_ID, openapi.USER_ID_PATH],
        request={"application/json": openapi.PreferenceSerializer(many=True)},
        responses=openapi.PREFERENCES_ANSWER | openapi.errors(400, 401, 403, 429),
        examples=[
            OpenApiExample(
                "off",
                # One preference: the schema shows it inside the array the body is.
                value={"notificationId": "order_tracking", "channel": "EMAIL", "delivery": "off"},
                request_only=True,
            )
        ],
    )
    def post(self, request, client_id: str, user_id: str):
        preferences = preferences_parse(_json_body(request))
        end_users.user_preferences_set(
            environment=request.auth.environment, user_id=user_id, preferences=preferences
        )
        return Response({"userId": user_id, "preferences": len(preferences)})


class UserPreferencesDeleteView(_UserView):
    """`DELETE /{clientId}/users/{userId}/preferences?notificationId=…[&subNotificationId=…]`."""

    @extend_schema(
        operation_id="user_preferences_delete",
        summary="Delete a user's preferences for a notification type",
        description="Callable with the user hash of the user in the URL, or the client secret.",
        tags=["users"],
        parameters=[openapi.CLIENT_ID, openapi.USER_ID_PATH, *openapi.PREFERENCE_QUERY],
        responses=openapi.DELETED_ANSWER | openapi.errors(400, 401, 403, 429, user_hash=True),
    )
    def delete(self, request, client_id: str, user_id: str):
        notification_type = request.query_params.get("notificationId", "")
        if not notification_type:
            raise RequestInvalid(
                "notificationId is required as a query parameter: "
                "?notificationId=order_tracking[&subNotificationId=...]."
            )
        for name in ("notificationId", "subNotificationId"):
            # PostgreSQL text cannot hold U+0000: a 400, not a DataError (found by the fuzz
            # test once these parameters were in the schema).
            if "\x00" in request.query_params.get(name, ""):
                raise RequestInvalid(f"{name} contains a NUL character (%00): remove it.")
        deleted = end_users.user_preferences_delete(
            environment=request.auth.environment,
            user_id=user_id,
            notification_type=notification_type,
            sub_notification_id=request.query_params.get("subNotificationId", ""),
        )
        return Response({"deleted": deleted})


class IdentifyView(_UserView):
    """`POST /{clientId}/users/{userId}`: NotificationAPI's identify_user."""

    @extend_schema(
        operation_id="user_identify",
        summary="Identify a user: their email, number, time zone and push tokens",
        description=openapi.IDENTIFY_DESCRIPTION,
        tags=["users"],
        parameters=[openapi.CLIENT_ID, openapi.USER_ID_PATH],
        request={"application/json": openapi.IdentifySerializer},
        responses=openapi.IDENTIFY_ANSWER | openapi.errors(400, 401, 403, 429, user_hash=True),
        examples=[
            OpenApiExample(
                "identify",
                value={
                    "email": "alice@example.com",
                    "number": "+14155550100",
                    "timezone": "America/New_York",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request, client_id: str, user_id: str):
        recipient = identify_parse(_json_body(request, required=False), user_id)
        user = end_users.end_user_identify(
            environment=request.auth.environment, recipient=recipient
        )
        return Response(
            {
                "id": user.user_id,
                "email": user.email,
                "number": user.number,
                "timezone": user.timezone,
            }
        )


def _in_app_item(item) -> dict:
    return {
        "id": str(item.notification_id),
        "trackingId": str(item.notification_id),
        "notificationId": item.notification_type,
        "subNotificationId": item.sub_notification_id or None,
        "title": item.title,
        "redirectURL": item.url or None,
        "imageURL": item.image or None,
        "date": item.created_at.isoformat(),
        "opened": item.opened_at.isoformat() if item.opened_at else None,
        "clicked": item.clicked_at.isoformat() if item.clicked_at else None,
    }


class InAppFeedView(_UserView):
    """`GET`/`PATCH /{clientId}/users/{userId}/notifications/INAPP_WEB`."""

    @extend_schema(
        operation_id="in_app_feed",
        summary="A user's in-app feed, newest first",
        description="Fetching marks the items **Delivered**. Callable with the user hash.",
        tags=["users"],
        parameters=[openapi.CLIENT_ID, openapi.USER_ID_PATH, openapi.FEED_COUNT],
        responses=openapi.FEED_ANSWER | openapi.errors(400, 401, 403, 429, user_hash=True),
    )
    def get(self, request, client_id: str, user_id: str):
        try:
            limit = min(max(int(request.query_params.get("count", 50)), 1), 200)
        except ValueError:
            raise RequestInvalid("count must be a whole number between 1 and 200.") from None
        items = in_app.in_app_feed_fetch(
            environment=request.auth.environment, user_id=user_id, limit=limit
        )
        return Response({"notifications": [_in_app_item(item) for item in items]})

    @extend_schema(
        operation_id="in_app_update",
        summary="Mark in-app items opened, clicked, archived or actioned",
        description="Opened and clicked become **Engagement** events. Callable with the user hash.",
        tags=["users"],
        parameters=[openapi.CLIENT_ID, openapi.USER_ID_PATH],
        request={"application/json": openapi.InAppUpdateSerializer},
        responses=openapi.UPDATED_ANSWER | openapi.errors(400, 401, 403, 429, user_hash=True),
        examples=[
            OpenApiExample(
                "opened",
                value={"trackingIds": [str(uuid.UUID(int=1))], "opened": "2026-11-27T10:00:00Z"},
                request_only=True,
            )
        ],
    )
    def patch(self, request, client_id: str, user_id: str):
        update = in_app_update_parse(_json_body(request))
        updated = in_app.in_app_update(
            environment=request.auth.environment, user_id=user_id, update=update
        )
        return Response({"updated": updated})
