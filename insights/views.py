import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from insights.metrics import metrics_registry


def _text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain")


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the Prometheus exposition, for `Authorization: Bearer METRICS_TOKEN`."""
    token = settings.METRICS_TOKEN
    if not token:
        return _text(
            "Metrics are off: set METRICS_TOKEN and send it as 'Authorization: Bearer <token>'.",
            404,
        )
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), token.encode()
    ):
        response = _text("Send 'Authorization: Bearer <METRICS_TOKEN>'.", 401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
