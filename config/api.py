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
