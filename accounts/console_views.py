"""The console's own security pages: two-factor login (set up, enter the code, recovery codes)
and the person's sessions. Each view validates input, calls one service of
accounts/two_factor.py or accounts/sessions.py, and answers; all sit inside the admin's
login (admin.site.admin_view) and never in a cache."""

from base64 import b32encode

import segno
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.plugins.otp_static.models import StaticDevice

from accounts.sessions import (
    TWO_FACTOR,
    TwoFactor,
    console_session_list_for_user,
    console_sessions_end,
)
from accounts.two_factor import (
    TwoFactorRefused,
    two_factor_device,
    two_factor_disable,
    two_factor_enrolment_confirm,
    two_factor_enrolment_start,
    two_factor_recovery_codes_issue,
    two_factor_recovery_codes_left,
    two_factor_required,
    two_factor_requiring_accounts,
    two_factor_verify,
)

CODES_ONCE = "accounts.recovery_codes_once"


def _page(request, template: str, context: dict, status: int = 200) -> TemplateResponse:
    response = TemplateResponse(
        request,
        template,
        {**admin.site.each_context(request), **context},
        status=status,
    )
    # Secrets (a key, recovery codes) or who is signed in where: no cache keeps a copy.
    add_never_cache_headers(response)
    return response


def _next(request) -> str:
    """Where to go once done: the page the person was on, never another site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and safe else reverse("admin:index")


def _verified(request) -> None:
    """The session passed its second factor. A new session key, as at sign-in: a key seen
    before the code was entered is not the key of the fully signed-in session."""
    request.session.cycle_key()
    request.session[TWO_FACTOR] = TwoFactor.VERIFIED


@sensitive_post_parameters("code")
def two_factor_view(request):
    """Set up an authenticator app, or see and change the one in use."""
    user = request.user
    state = request.session.get(TWO_FACTOR)
    device = two_factor_device(user=user)
    if device and state != TwoFactor.VERIFIED:
        # A password alone does not change the second factor, nor does a session signed in
        # before the app was set up elsewhere (the middleware would hold it within a minute).
        request.session[TWO_FACTOR] = TwoFactor.VERIFY
        return HttpResponseRedirect(
            f"{reverse('two-factor-verify')}?{urlencode({'next': request.get_full_path()})}"
        )
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "recovery_codes" and device:
        request.session[CODES_ONCE] = two_factor_recovery_codes_issue(user=user)
        return HttpResponseRedirect(reverse("two-factor-recovery-codes"))
    if action == "disable" and device:
        try:
            two_factor_disable(user=user)
        except TwoFactorRefused as refused:
            messages.error(request, str(refused))
        else:
            request.session[TWO_FACTOR] = TwoFactor.NOT_NEEDED
            messages.success(request, "Two-factor login is off.")
        return HttpResponseRedirect(reverse("two-factor"))
    enrolling = not device or request.GET.get("new") == "1" or action == "confirm"
    if not enrolling:
        return _page(
            request,
            "accounts/two_factor.html",
            {
                "title": "Two-factor login",
                "device": device,
                "codes_left": two_factor_recovery_codes_left(user=user),
                "required": two_factor_required(user=user),
            },
        )
    pending = two_factor_enrolment_start(user=user)
    error = None
    if action == "confirm":
        try:
            enrolled = two_factor_enrolment_confirm(
                user=user, device=pending, code=request.POST.get("code", "")
            )
        except TwoFactorRefused as refused:
            error = str(refused)
        else:
            _verified(request)
            request.session[CODES_ONCE] = enrolled.recovery_codes
            next_url = _next(request)
            return HttpResponseRedirect(
                f"{reverse('two-factor-recovery-codes')}?{urlencode({'next': next_url})}"
            )
    uri = pending.config_url
    return _page(
        request,
        "accounts/two_factor_enrol.html",
        {
            "title": "Set up two-factor login",
            "qr_svg": segno.make(uri, error="m").svg_inline(scale=4, title="QR code to scan"),
            "key": _grouped_key(pending),
            "uri": uri,
            "error": error,
            "forced": state == TwoFactor.ENROL,
            "requiring": two_factor_requiring_accounts(user=user),
            "replacing": bool(device),
            "next": _next(request),
        },
        status=400 if error else 200,
    )


def _grouped_key(device) -> str:
    key = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def recovery_codes_view(request):
    """The recovery codes just issued, shown once."""
    codes = request.session.pop(CODES_ONCE, None)
    return _page(
        request,
        "accounts/recovery_codes.html",
        {
            "title": "Your recovery codes" if codes else "Recovery codes no longer shown",
            "codes": codes,
            "next": _next(request),
        },
        status=200 if codes else 410,
    )


@sensitive_post_parameters("code")
def two_factor_verify_view(request):
    """The second step of signing in: the app's code, or a recovery code."""
    user = request.user
    if request.session.get(TWO_FACTOR) != TwoFactor.VERIFY:
        return HttpResponseRedirect(_next(request))
    error = None
    if request.method == "POST":
        try:
            device = two_factor_verify(user=user, code=request.POST.get("code", ""))
        except TwoFactorRefused as refused:
            error = str(refused)
        else:
            _verified(request)
            if isinstance(device, StaticDevice):
                left = two_factor_recovery_codes_left(user=user)
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. If your phone is lost, "
                    "set up a new app on the Two-factor login page.",
                )
            return HttpResponseRedirect(_next(request))
    return _page(
        request,
        "accounts/two_factor_verify.html",
        {"title": "Enter your code", "error": error, "next": _next(request)},
        status=400 if error else 200,
    )


def sessions_view(request):
    """The person's signed-in sessions; end one, or all but this one."""
    user = request.user
    current = request.session.session_key
    if request.method == "POST":
        if request.POST.get("action") == "end_others":
            ended = console_sessions_end(user=user, keep_session_key=current)
        else:
            ids = [value for value in request.POST.getlist("session") if value.isdigit()]
            ended = console_sessions_end(user=user, ids=ids, keep_session_key=current)
        messages.success(request, f"Ended {ended} session(s).")
        return HttpResponseRedirect(reverse("sessions"))
    return _page(
        request,
        "accounts/sessions.html",
        {
            "title": "Your sessions",
            "console_sessions": console_session_list_for_user(user=user),
            "current_key": current,
            "idle_minutes": settings.CONSOLE_SESSION_IDLE_MINUTES,
        },
    )
