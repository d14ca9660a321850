"""The WSGI application: provider callbacks (/webhooks/) through a middleware stack of their
own, everything else through the project's.

A callback is a signed POST from a provider's server: no browser, no cookie, no console user.
Of the project's middleware it needs only what guards the transport (SecurityMiddleware: the
HTTPS redirect; CommonMiddleware: disallowed user agents, APPEND_SLASH). The session, CSRF
(the receivers are exempt), authentication, messages, the console's session rules, frame
options, the viewer's time zone and django-axes serve the console and cost every callback
their time, and with a cookie present (a browser, a misconfigured proxy) a session read and a
user read before the receiver even starts. Each receiver authenticates the provider itself
(signatures, basic auth) and stores the request in the inbox before its 2xx: none of that
depends on middleware.

Two Django handlers, each with its own middleware chain (a handler's chain and its view,
exception and template-response middleware lists belong to it alone); a request goes to one
by its path.
"""

from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

WEBHOOKS_PREFIX = "/webhooks/"  # config/urls.py mounts webhooks.urls here
# The project's middleware (settings.MIDDLEWARE) that callbacks go through, in its order.
WEBHOOK_MIDDLEWARE = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
    }
)


class _WebhookHandler(WSGIHandler):
    def load_middleware(self, is_async=False):
        # BaseHandler builds the chain from settings.MIDDLEWARE: the webhooks' part of it,
        # for the time of the build (once, when the application is created).
        project_middleware = settings.MIDDLEWARE
        settings.MIDDLEWARE = [path for path in project_middleware if path in WEBHOOK_MIDDLEWARE]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = project_middleware


def application_with_webhooks(project: WSGIHandler) -> Callable:
    """The WSGI application: `project` (config.wsgi's handler) for every path but
    /webhooks/, which a handler of WEBHOOK_MIDDLEWARE only serves."""
    webhooks = _WebhookHandler()

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        handler = webhooks if environ.get("PATH_INFO", "").startswith(WEBHOOKS_PREFIX) else project
        return handler(environ, start_response)

    return application
