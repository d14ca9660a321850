"""A missing or forbidden page is the product's page (templates/404.html, 403.html), in the
console's look with its breadcrumb band, never Django's bare or debug page; an API client
gets the API's JSON (`{"message": ...}`, as config.api answers every other error).

In DEBUG (make run's demo) Django answers a 404 with its technical page: the URL patterns
tried, the settings module. A person trying the demo meets that page on a stale link or
another tenant's notification and reads it as a crash; it also lists the routes. So
ProductErrorPagesMiddleware answers 404s with the product page in DEBUG too. DEBUG itself stays
on in development: runserver serves the static files with it, and a 500 keeps its traceback
for whoever develops (403s never had a debug page).
"""

from django.conf import settings
from django.contrib import admin
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404

# Pages for people: the console, and the invitation link (opened from an email).
HTML_PREFIXES = ("/admin/", "/invitations/")

NOT_FOUND = "There is no such page in your accounts."
FORBIDDEN = "Your role does not allow this: ask an owner or admin of the account."


def _wants_html(request) -> bool:
    if request.path.startswith(HTML_PREFIXES):
        return True
    return "text/html" in request.headers.get("Accept", "")


def _said(exception, default: str) -> str:
    """What the exception says to the person: the console's Http404 and PermissionDenied say
    why in words ("No notification with this tracking id in your accounts."). A resolver's
    404 carries the patterns it tried, never shown."""
    if isinstance(exception, Resolver404) or not exception or not exception.args:
        return default
    message = exception.args[0]
    return message if isinstance(message, str) and message else default


def _page(request, template: str, status: int, heading: str, message: str):
    context = {
        **admin.site.each_context(request),
        "heading": heading,
        "message": message,
        "status": status,
    }
    return render(request, template, context, status=status)


def page_not_found(request, exception=None):
    message = _said(exception, NOT_FOUND)
    if not _wants_html(request):
        return JsonResponse({"message": f"Not found: {request.path}"}, status=404)
    return _page(request, "404.html", 404, "Page not found", message)


def permission_denied(request, exception=None):
    message = _said(exception, FORBIDDEN)
    if not _wants_html(request):
        return JsonResponse({"message": message}, status=403)
    return _page(request, "403.html", 403, "Not allowed", message)


class ProductErrorPagesMiddleware:
    """In DEBUG, a 404 is answered as in production (page_not_found), not by Django's
    technical page. Without DEBUG Django already calls handler404, so this does nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # No view matched (Resolver404 is raised before any view or process_exception).
        if (
            settings.DEBUG
            and response.status_code == 404
            and getattr(request, "resolver_match", None) is None
        ):
            return page_not_found(request, None)
        return response

    def process_exception(self, request, exception):
        # PermissionDenied is left to Django, which calls handler403 in DEBUG too.
        if settings.DEBUG and isinstance(exception, Http404):
            return page_not_found(request, exception)
        return None
