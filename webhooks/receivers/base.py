"""What every receiver does the same way: refuse oversized bodies (413), resolve the
`?env=<client id>` a callback URL may carry, and store an authentic request raw in the inbox
before answering 2xx. A receiver never parses before answering: parsing happens in
processing, so a provider's odd payload can never turn into an error the provider retries.
"""

import logging

from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse

from accounts.models import Environment
from webhooks.inbox import inbox_store

logger = logging.getLogger("webhooks")
# Sent for every callback refused before the inbox (never stored): provider=, status=.
callback_was_refused = Signal()

# Bodies above this are refused with 413: no provider's status callback comes near it.
MAX_BODY_BYTES = 1024 * 1024
# Never stored: credentials of the request itself.
_UNSTORED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class UnknownEnvironment(LookupError):
    pass


def body_too_large(request: HttpRequest) -> bool:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    return declared > MAX_BODY_BYTES


def too_large_response() -> HttpResponse:
    return HttpResponse(
        f"The body is larger than {MAX_BODY_BYTES} bytes; provider callbacks are far smaller.",
        status=413,
        content_type="text/plain",
    )


def callback_environment(
    request: HttpRequest, *, related: tuple[str, ...] = ()
) -> Environment | None:
    """The environment a callback URL names with `?env=<client id>`, or None when it names
    none, loaded with the `related` rows its receiver needs (in the same query). Raises
    UnknownEnvironment for a client id that does not exist."""
    client_id = request.GET.get("env", "")
    if not client_id:
        return None
    environments = Environment.objects.filter(client_id=client_id)
    if related:  # select_related() without fields is deprecated (Django 6.1)
        environments = environments.select_related(*related)
    environment = environments.first()
    if environment is None:
        raise UnknownEnvironment(client_id)
    return environment


def stored_headers(request: HttpRequest) -> dict[str, str]:
    return {
        name: value
        for name, value in request.headers.items()
        if name.lower() not in _UNSTORED_HEADERS
    }


def callback_store(
    request: HttpRequest, *, provider: str, environment: Environment | None
) -> HttpResponse:
    """Store an authenticated callback raw; processing is enqueued on commit."""
    inbox_store(
        provider=provider,
        path=request.get_full_path(),
        headers=stored_headers(request),
        body=request.body,
        environment_id=environment.id if environment else None,
    )
    return HttpResponse(status=200)


def callback_refused(request: HttpRequest, *, provider: str, reason: str, status: int):
    # A warning without the body (it may hold message content or personal data).
    logger.warning(
        "Refused a %s callback to %s from %s: %s",
        provider,
        request.path,
        request.META.get("REMOTE_ADDR", "?"),
        reason,
    )
    callback_was_refused.send(callback_refused, provider=provider, status=status)
    return HttpResponse(reason, status=status, content_type="text/plain")
