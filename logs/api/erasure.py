"""Erasing one end user's data through the API: DELETE /api/v1/users/{userId}/data queues a
job (logs/erasure.py) and answers 202 with its id; GET /api/v1/erasures/{jobId} says how far
it got. Both need the `manage` scope: the client secret has it, an API key only if made so."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import scope_required
from accounts.models import ApiKey
from logs.api.params import USER_ID
from logs.api.throttling import CredentialRateThrottle
from logs.api.views import InvalidInput, _errors
from logs.erasure import erased_tables, erasure_for_api, erasure_request
from logs.models import ErasureJob

_JOB = inline_serializer(
    "ErasureJob",
    {
        "jobId": serializers.UUIDField(),
        "userId": serializers.CharField(),
        "state": serializers.ChoiceField(choices=ErasureJob.State.values),
        "requestedAt": serializers.DateTimeField(),
        "requestedBy": serializers.CharField(),
        "finishedAt": serializers.DateTimeField(allow_null=True),
        "rows": serializers.DictField(child=serializers.IntegerField()),
        "rowsRemoved": serializers.IntegerField(),
    },
)
_EXAMPLE = OpenApiExample(
    "Done",
    value={
        "jobId": "7b0f4f7e-3c2a-4d8e-9a51-0f6c2d1e9b10",
        "userId": "usr_42",
        "state": "done",
        "requestedAt": "2026-12-07T04:30:00+00:00",
        "requestedBy": "API key nlk_ab12cd…",
        "finishedAt": "2026-12-07T04:30:02+00:00",
        # Built when the URLs load, after every app registered its erasers.
        "rows": {table: 0 for table in erased_tables()} | {"logs_notification": 12},
        "rowsRemoved": 12,
    },
)
_ERRORS = _errors(
    {
        400: "Bad input: `message` says what to send instead.",
        401: "Missing or invalid credentials.",
        403: "The credential lacks the `manage` scope.",
        429: "Too many requests for this credential: retry after `Retry-After` seconds.",
    }
)


def _requested_by(credentials) -> str:
    if credentials.api_key is not None:
        return f"API key {credentials.api_key.prefix}…"
    return "client secret"


class _ErasureAPIView(APIView):
    permission_classes = [IsAuthenticated, scope_required(ApiKey.Scope.MANAGE)]
    throttle_classes = [CredentialRateThrottle]


class UserDataView(_ErasureAPIView):
    @extend_schema(
        operation_id="user_data_erase",
        summary="Erase everything recorded about one user",
        description="Queues the erasure of the user's notifications, deliveries, events, in-app "
        "items, preferences, end-user record and idempotency keys in this environment, over "
        "every day, and answers 202 with the job; GET the job to see when it is done. A "
        "request while the user's erasure is still queued or running answers the same job. "
        "Hourly counts keep their numbers; the access audit records who asked and how many "
        "rows went.",
        responses={202: OpenApiResponse(_JOB, examples=[_EXAMPLE]), **_ERRORS},
        tags=["users"],
    )
    def delete(self, request, user_id: str):
        try:
            user_id = USER_ID.run_validation(user_id)
        except serializers.ValidationError as exc:
            raise InvalidInput(f"userId: {exc.detail[0]}") from None
        job, _ = erasure_request(
            environment=request.auth.environment,
            user_id=user_id,
            requested_by=_requested_by(request.auth),
        )
        return Response(
            erasure_for_api(job),
            status=202,
            headers={"Location": f"/api/v1/erasures/{job.pk}"},
        )


class ErasureJobView(_ErasureAPIView):
    @extend_schema(
        operation_id="user_data_erasure_get",
        summary="An erasure job: its state and the rows it removed",
        description="A job of another environment answers 404, as one that does not exist.",
        responses={
            200: OpenApiResponse(_JOB, examples=[_EXAMPLE]),
            **_ERRORS,
            **_errors({404: "No erasure job with this id in this environment."}),
        },
        tags=["users"],
    )
    def get(self, request, job_id):
        job = ErasureJob.objects.filter(pk=job_id, environment=request.auth.environment).first()
        if job is None:
            raise NotFound("No erasure job with this id in this environment.")
        return Response(erasure_for_api(job))
