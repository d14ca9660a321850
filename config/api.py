"""API-wide conventions: every error is JSON with a `message` that says what to fix."""

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        response.data = {"message": str(data["detail"])}
    elif isinstance(data, dict | list):
        response.data = {"message": "The request is not valid.", "errors": data}
    return response
