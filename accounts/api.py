from rest_framework.response import Response
from rest_framework.views import APIView


class EnvironmentView(APIView):
    """`GET /api/v1/environment`: which environment these credentials reach, and with which
    scopes. Integrators use it to check a key before wiring it in."""

    def get(self, request):
        credentials = request.auth
        environment = credentials.environment
        return Response(
            {
                "clientId": environment.client_id,
                "environment": environment.name,
                "account": environment.account.name,
                "scopes": sorted(credentials.scopes),
                "apiKey": credentials.api_key.prefix if credentials.api_key else None,
            }
        )
