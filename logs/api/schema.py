"""drf-spectacular extensions: how our credentials and /api/v1/environment (an APIView of
accounts/, which answers a plain dict) appear in the OpenAPI schema. Imported by
logs/api/urls.py, so they are registered before any schema is generated."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers

from logs.api.serializers import ErrorSerializer


class EnvironmentAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.EnvironmentAuthentication"
    name = ["basicAuth", "bearerAuth"]

    def get_security_requirement(self, auto_schema):
        # Either header works (OR): Basic clientId:clientSecret or clientId:apiKey, or Bearer.
        return [{"basicAuth": []}, {"bearerAuth": []}]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "basic",
                "description": "base64(clientId:clientSecret) or base64(clientId:apiKey).",
            },
            {"type": "http", "scheme": "bearer", "description": "An API key."},
        ]


class UserHashAuthenticationScheme(OpenApiAuthenticationExtension):
    # The send API's endpoints an end user's app may call: the server credentials, or
    # NotificationAPI's user hash.
    target_class = "notifications.api._UserHashAuthentication"
    name = "userHashAuth"

    def get_security_requirement(self, auto_schema):
        return [{"basicAuth": []}, {"bearerAuth": []}, {"userHashAuth": []}]

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "base64(clientId:userId:H), H = base64(HMAC-SHA256(clientSecret, "
            "userId)) or base64(SHA-256(clientSecret + userId)).",
        }


class EnvironmentViewSchema(OpenApiViewExtension):
    target_class = "accounts.api.EnvironmentView"

    def view_replacement(self):
        class Fixed(self.target_class):
            @extend_schema(
                operation_id="environment",
                summary="Which environment and scopes a credential reaches",
                tags=["credentials"],
                examples=[
                    OpenApiExample(
                        "A read-only API key",
                        response_only=True,
                        value={
                            "clientId": "6ok6imq9unr2budgiebjdaa6oi",
                            "environment": "production",
                            "account": "Acme",
                            "scopes": ["read"],
                            "apiKey": "nlk_3f9a1c2b4d5e",
                        },
                    )
                ],
                responses={
                    200: inline_serializer(
                        "Environment",
                        {
                            "clientId": serializers.CharField(),
                            "environment": serializers.CharField(),
                            "account": serializers.CharField(),
                            "scopes": serializers.ListField(child=serializers.CharField()),
                            "apiKey": serializers.CharField(allow_null=True),
                        },
                    ),
                    401: OpenApiResponse(
                        ErrorSerializer, description="Missing or invalid credentials."
                    ),
                },
            )
            def get(self, request):
                return super().get(request)

        return Fixed
