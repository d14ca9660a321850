"""What a person sees when django-axes has locked their console logins (AXES_LOCKOUT_CALLABLE):
the admin's look, a sentence that says how long and who can help, and 429 with Retry-After,
not axes's bare text. Lockouts are listed for superusers in the admin (Access attempts);
deleting the row there lets the person in at once."""

import math

from axes.helpers import get_cool_off
from django.contrib import admin
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers


def lockout_message(minutes: int) -> str:
    return (
        f"Too many failed logins: try again in {minutes} minute{'s' if minutes != 1 else ''} "
        "or ask an administrator."
    )


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    # Every attempt during a lockout starts the cool-off again
    # (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT), so from this attempt it is the whole
    # cool-off.
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    minutes = max(1, math.ceil(seconds / 60))
    # Rendered here: axes's middleware answers after Django has rendered template responses.
    response = render(
        request,
        "admin/login_locked_out.html",
        {
            **admin.site.each_context(request),
            "is_nav_sidebar_enabled": False,
            "title": "Login locked",
            "message": lockout_message(minutes),
        },
        status=429,
    )
    if seconds:
        response["Retry-After"] = str(seconds)
    add_never_cache_headers(response)
    return response
