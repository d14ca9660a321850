"""The logs API: /api/v1/logs… (REST, `read` scope) and NotificationAPI's
POST /{clientId}/logs/query. Each view validates its input, calls one selector and answers."""

import functools
from urllib.parse import urlencode

from django.http import StreamingHttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound, Throttled
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import scope_required
from config.api import JSONParser
from config.export_slots import ExportsBusy, export_slot_stream, export_slot_take
from config.throttling import credential_ident
from logs.api import examples
from logs.api.cursors import cursor_token
from logs.api.export import CONTENT_TYPES, export_stream
from logs.api.params import (
    USER_ID,
    BadRequest,
    LogExportQuery,
    LogListQuery,
    LogQuery,
    LogSearch,
    UserLogListQuery,
    checked,
    compat_search,
    page_cursor,
    v1_filters,
)
from logs.api.search import SearchTooSlow, log_page, page_deliveries, page_events
from logs.api.serializers import (
    ErrorSerializer,
    LogDetailSerializer,
    LogPageSerializer,
    LogQueryResponseSerializer,
    iso,
    log_record,
    log_summary,
)
from logs.api.throttling import CredentialRateThrottle
from logs.masking import Masker, addresses_hidden, addresses_of
from logs.models import Notification
from logs.search_filters import NotificationPage
from logs.selectors import notification_deliveries_sent, notification_get, notification_timeline


class InvalidInput(APIException):
    status_code = 400
    default_code = "invalid"


def _errors(status_codes: dict[int, str]) -> dict:
    return {
        code: OpenApiResponse(ErrorSerializer, description=text)
        for code, text in status_codes.items()
    }


# A query string longer than the server's limit (gunicorn: 4,094 bytes a request line) is
# refused by the server itself, before the API, and not as JSON.
TOO_LONG = {
    414: OpenApiResponse(description="The query string is too long: send fewer values per request.")
}
ERRORS = _errors(
    {
        400: "Bad input: `message` names the field and what to send instead.",
        401: "Missing or invalid credentials.",
        403: "The credential lacks the `read` scope.",
        429: "Too many requests for this credential: retry after `Retry-After` seconds.",
    }
)


class _IgnoreFormatParameter(DefaultContentNegotiation):
    # WORKAROUND: DRF reads ?format= as "pick a renderer" and answers 404 for an unknown one;
    # here it is the export's file format (a query parameter like any other, refused by the
    # views that do not take it), and answers and errors are always JSON.
    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@functools.cache
def _query_fields(query_serializer: type[serializers.Serializer]) -> dict:
    # The fields, bound once per serializer class: DRF deep-copies a serializer's declared
    # fields each time one is made (most of a list request's validation CPU), and these keep
    # no state from one validation to the next (as USER_ID, shared by every request).
    return query_serializer().fields


@functools.cache
def _parameter_names(query_serializer: type[serializers.Serializer]) -> frozenset[str]:
    return frozenset(_query_fields(query_serializer))


class LogsAPIView(APIView):
    permission_classes = [IsAuthenticated, scope_required("read")]
    throttle_classes = [CredentialRateThrottle]
    # Parameters this view accepts in the query string; anything else is a typo to report.
    query_serializer: type[serializers.Serializer] | None = None
    content_negotiation_class = _IgnoreFormatParameter
    # JSON bodies only: NotificationAPI's SDKs send JSON, and a form-encoded body would make
    # an empty field mean "absent" instead of a 400.
    parser_classes = [JSONParser]

    def handle_exception(self, exc):
        if isinstance(exc, BadRequest):
            exc = InvalidInput(str(exc))
        return super().handle_exception(exc)

    def validated_query(self, request) -> dict:
        known = _parameter_names(self.query_serializer)
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise BadRequest(
                f"{unknown[0]}: unknown query parameter; this endpoint takes "
                f"{', '.join(sorted(known))}."
            )
        for name, values in request.query_params.lists():
            if "" in values:
                # DRF would read an empty value as "absent"; say so rather than guess.
                raise BadRequest(f"{name}: empty value; give a value or leave {name} out.")
        query = self.query_serializer(data=request.query_params)
        query.fields = _query_fields(self.query_serializer)  # a cached_property: not deep-copied
        query.is_valid(raise_exception=True)
        return query.validated_data


def _addresses_masked(request) -> bool:
    """Whether the credential is a read key marked masked (ApiKey.masked): its answers show
    email addresses and phone numbers as a masked viewer sees them."""
    api_key = getattr(request.auth, "api_key", None)
    return bool(api_key is not None and api_key.masked)


def _shown(request, notification: Notification, answer: dict) -> dict:
    """`answer` (about `notification`) as the credential may read it."""
    if not _addresses_masked(request):
        return answer
    known = addresses_of(
        email=notification.email, number=notification.number, request=notification.request
    )
    return addresses_hidden(Masker(), known=known).data(answer)


def _with_details(page: NotificationPage, *, timeline: bool) -> list[Notification]:
    notifications = page.notifications
    deliveries = page_deliveries(notifications=notifications)
    events = page_events(notifications=notifications) if timeline else {}
    for notification in notifications:
        notification.api_deliveries = deliveries.get(notification.id, [])
        notification.api_timeline = events.get(notification.id, [])
    return notifications


# What a row of the list shows (log_summary), and what masking reads besides (the request's
# addresses): the request and merge tags are JSON parsed per row, and a page need not read them.
SUMMARY_FIELDS = (
    "id", "environment_id", "notification_type", "user_id", "email", "number", "status",
    "created_at", "updated_at",
)  # fmt: skip
MASKED_SUMMARY_FIELDS = (*SUMMARY_FIELDS, "request")


LIST_DESCRIPTION = """Notifications of the credential's environment, newest first, one page at
a time. Every filter is answered from an index. Follow `next` (or the `Link: rel="next"`
header) for the following page; the last page has `next: null`. A page may hold fewer rows than
`limit` and still have a `next` when other filters reject most of a channel's or an event's
candidates: keep following it."""


@extend_schema_view(
    get=extend_schema(
        operation_id="logs_list",
        summary="List notification logs",
        description=LIST_DESCRIPTION,
        parameters=[LogListQuery],
        responses={200: LogPageSerializer, **ERRORS, **TOO_LONG},
        examples=[examples.LOG_PAGE, examples.BAD_STATUS],
        tags=["logs"],
    )
)
class LogListView(LogsAPIView):
    query_serializer = LogListQuery

    def search(self, request, query: dict) -> NotificationPage:
        environment_id = request.auth.environment.pk
        return log_page(
            environment_id=environment_id,
            filters=checked(v1_filters(query, user_id=self.path_user_id())),
            after=page_cursor(
                environment_id=environment_id, token=query.get("cursor"), field="cursor"
            ),
            limit=query["limit"],
            fields=MASKED_SUMMARY_FIELDS if _addresses_masked(request) else SUMMARY_FIELDS,
        )

    def path_user_id(self) -> str | None:
        return None

    def get(self, request, **kwargs):
        query = self.validated_query(request)
        page = self.search(request, query)
        token = cursor_token(environment_id=request.auth.environment.pk, cursor=page.next_cursor)
        body = {
            "results": [
                _shown(request, n, log_summary(n)) for n in _with_details(page, timeline=False)
            ],
            "next": token,
            "stoppedEarly": page.stopped_early,
            "searchedBackTo": iso(page.searched_back_to) if page.searched_back_to else None,
        }
        response = Response(body)
        if token:
            params = {k: v for k, v in request.query_params.lists() if k != "cursor"}
            url = request.build_absolute_uri(request.path)
            response["Link"] = (
                f'<{url}?{urlencode({**params, "cursor": token}, doseq=True)}>; rel="next"'
            )
        return response


@extend_schema_view(
    get=extend_schema(
        operation_id="user_logs_list",
        summary="List one user's notification logs",
        description="The same as GET /api/v1/logs with the user id from the path.",
        parameters=[
            UserLogListQuery,
            OpenApiParameter("user_id", str, OpenApiParameter.PATH, description="Your user id."),
        ],
        responses={200: LogPageSerializer, **ERRORS, **TOO_LONG},
        examples=[examples.LOG_PAGE],
        tags=["logs"],
    )
)
class UserLogListView(LogListView):
    query_serializer = UserLogListQuery

    def path_user_id(self) -> str | None:
        # The same rules as the userId parameter (length, no NUL or lone surrogate).
        try:
            return USER_ID.run_validation(self.kwargs["user_id"])
        except serializers.ValidationError as exc:
            raise BadRequest(f"userId: {exc.detail[0]}") from None


@extend_schema_view(
    get=extend_schema(
        operation_id="logs_get",
        summary="One notification: deliveries, rendered content and timeline",
        description="A tracking id of another environment answers 404, as one that does not exist.",
        parameters=[
            OpenApiParameter(
                "tracking_id", str, OpenApiParameter.PATH, description="The tracking id (a UUID)."
            )
        ],
        responses={
            200: LogDetailSerializer,
            **ERRORS,
            **_errors({404: "No notification with this tracking id in this environment."}),
        },
        examples=[examples.LOG_DETAIL],
        tags=["logs"],
    )
)
class LogDetailView(LogsAPIView):
    def get(self, request, tracking_id: str):
        if request.query_params:
            raise BadRequest(f"{next(iter(request.query_params))}: this endpoint takes no query.")
        try:
            notification = notification_get(
                environment_id=request.auth.environment.pk, tracking_id=tracking_id
            )
        except Notification.DoesNotExist:
            raise NotFound(
                f"No notification with tracking id {tracking_id!r} in this environment."
            ) from None
        notification.api_deliveries = notification_deliveries_sent(notification=notification)
        notification.api_timeline = notification_timeline(
            notification=notification, deliveries=notification.api_deliveries
        )
        return Response(_shown(request, notification, LogDetailSerializer(notification).data))


@extend_schema_view(
    get=extend_schema(
        operation_id="logs_export",
        summary="Export notification logs (CSV or NDJSON, streamed)",
        description="Every notification matching the filters, newest first, streamed in "
        "chunks read one after another: the size of the export does not change the server's "
        "memory. The date range is limited as for the list (see createdFrom). Each credential "
        "may run EXPORT_MAX_CONCURRENT exports at once (2 by default); one more is answered "
        "429 with Retry-After.",
        parameters=[LogExportQuery],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                str, description="One JSON object a line.", examples=[examples.EXPORT_NDJSON]
            ),
            (200, "text/csv"): OpenApiResponse(
                str,
                description="A header, then one line a notification.",
                examples=[examples.EXPORT_CSV],
            ),
            **ERRORS,
            **TOO_LONG,
        },
        tags=["logs"],
    )
)
class LogExportView(LogsAPIView):
    query_serializer = LogExportQuery

    def get(self, request):
        query = self.validated_query(request)
        file_format = query["format"]
        stream = export_stream(
            environment_id=request.auth.environment.pk,
            filters=checked(v1_filters(query)),
            format=file_format,
            addresses_masked=_addresses_masked(request),
        )
        holder = f"api:{credential_ident(request.auth)}"
        try:
            slot = export_slot_take(holder=holder, who="This credential")
        except ExportsBusy as busy:
            exc = Throttled(detail=busy.message)
            exc.wait = busy.retry_after  # Retry-After, without DRF's second sentence
            raise exc from None
        stream = export_slot_stream(stream, holder=holder, slot=slot)
        response = StreamingHttpResponse(stream, content_type=CONTENT_TYPES[file_format])
        response["Content-Disposition"] = f'attachment; filename="logs.{file_format}"'
        return response


@extend_schema_view(
    post=extend_schema(
        operation_id="logs_query",
        summary="NotificationAPI query_logs",
        description=examples.QUERY_DESCRIPTION,
        parameters=[
            OpenApiParameter(
                "client_id", str, OpenApiParameter.PATH, description="The environment's client id."
            )
        ],
        request=LogQuery,
        responses={200: LogQueryResponseSerializer, **ERRORS},
        examples=[*examples.QUERY_REQUESTS, examples.QUERY_RESPONSE, examples.BAD_REQUEST_FILTER],
        tags=["NotificationAPI compatibility"],
    )
)
class LogQueryView(LogsAPIView):
    def post(self, request, client_id: str):
        if not isinstance(request.data, dict):
            raise BadRequest("The body must be a JSON object of filters, e.g. {}.")
        unknown = sorted(set(request.data) - set(LogQuery().fields))
        if unknown:
            raise BadRequest(
                f"{unknown[0]}: not a query_logs field; use dateRangeFilter, "
                "notificationFilter, channelFilter, userFilter, statusFilter, trackingIds, "
                "requestFilter, envIdFilter, limit or nextToken."
            )
        body = LogQuery(data=request.data)
        body.is_valid(raise_exception=True)
        environment = request.auth.environment
        search = compat_search(
            body.validated_data, environment_id=environment.pk, client_id=environment.client_id
        )
        page = self.search(environment.pk, search)
        answer = {
            "logs": [
                _shown(request, n, log_record(n, client_id=environment.client_id))
                for n in _with_details(page, timeline=True)
            ]
        }
        token = cursor_token(environment_id=environment.pk, cursor=page.next_cursor)
        if token:
            answer["nextToken"] = token
        return Response(answer)

    @staticmethod
    def search(environment_id: int, search: LogSearch) -> NotificationPage:
        if not search.visible:
            return NotificationPage()
        try:
            return log_page(
                environment_id=environment_id,
                filters=search.filters,
                request_filter=search.request_filter,
                after=search.after,
                limit=search.limit,
            )
        except SearchTooSlow:
            raise BadRequest(
                "requestFilter: the search took too long over this date range; narrow "
                "dateRangeFilter or add filters (userFilter, notificationFilter, trackingIds), "
                "or use an equality on a request property (it is answered from an index)."
            ) from None
