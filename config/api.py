"""API-wide conventions: every error is JSON with a `message` that says what to fix."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import JsonResponse
from django.views import defaults
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        response.data = {"message": str(data["detail"])}
    elif isinstance(data, dict | list):
        response.data = {"message": _first_error(data), "errors": data}
    return response


def _first_error(errors, path: str = "") -> str:
    """The first validation error as "field: message" (nested fields as a.b, list items as
    a[0]), so the message names what to fix."""
    if isinstance(errors, dict):
        key, value = next(iter(errors.items()))
        if key == "non_field_errors":
            return _first_error(value, path)
        name = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key
        return _first_error(value, str(name))
    if isinstance(errors, list) and errors:
        return _first_error(errors[0], path)
    return f"{path}: {errors}" if path else str(errors)


def bad_request(request, exception):
    """Django's own 400 (SuspiciousOperation: too many query parameters, a body too big, a
    bad Host) as JSON with a message, except in the console, which keeps its HTML page."""
    if request.path.startswith("/admin/"):
        return defaults.bad_request(request, exception)
    if isinstance(exception, TooManyFieldsSent):
        message = (
            f"Too many query or form parameters (more than "
            f"{settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}): send fewer values."
        )
    elif isinstance(exception, RequestDataTooBig):
        message = (
            f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes, the most "
            "this API reads: send a smaller one."
        )
    else:
        message = "The request is not valid."
    return JsonResponse({"message": message}, status=400)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested too deeply for Python's decoder (a RecursionError,
    so a 500) answered as the parse error it is."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error: the body is nested too deeply.") from None
