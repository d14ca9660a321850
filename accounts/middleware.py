"""The console sessions' middleware: ends a session at the idle limit, records activity, and
holds a session whose second factor is pending at the code (or set-up) page.

It keeps the per-request cost at nothing in the common case: what it needs (the last
activity, whether the second factor is pending) lives in the session itself, and the database
is touched once a minute of activity, never per request. Beside accounts/sessions.py (the
session records) and accounts/two_factor.py (which ends sessions through sessions.py), above
both."""

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from accounts.models import ConsoleSession
from accounts.sessions import (
    LAST_ACTIVITY,
    RECORDED_KEY,
    TOUCH_EVERY,
    TWO_FACTOR,
    TwoFactor,
    console_session_record,
    idle_limit,
)
from accounts.two_factor import two_factor_state_for


def _is_background(request) -> bool:
    """A request the page's own script makes (the timeline's refresh asks for JSON): not the
    person's activity, so it neither keeps the session alive nor counts as last seen."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


# The pages a session with a pending second factor may still open.
def _gate_exempt_paths() -> tuple[str, ...]:
    return (
        reverse("two-factor"),
        reverse("two-factor-verify"),
        reverse("two-factor-recovery-codes"),
        reverse("admin:logout"),
        f"/{settings.STATIC_URL.lstrip('/')}",
    )


class ConsoleSessionMiddleware:
    """Ends a session idle for longer than CONSOLE_SESSION_IDLE_MINUTES, records activity
    (once a minute), and holds a session whose second factor is pending at the code (or
    set-up) page: a password alone opens nothing else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            ended = self._idle_end(request)
            if not ended:
                self._touch(request, user)
                held = self._gate(request)
                if held is not None:
                    return held
        response = self.get_response(request)
        self._rekey(request)
        return response

    def _idle_end(self, request) -> bool:
        last = request.session.get(LAST_ACTIVITY)
        if last and timezone.now() - datetime.fromisoformat(last) > idle_limit():
            ConsoleSession.objects.filter(session_key=request.session.session_key).delete()
            logout(request)
            messages.info(
                request,
                f"You were signed out after {settings.CONSOLE_SESSION_IDLE_MINUTES} minutes "
                "without activity: sign in again.",
            )
            return True
        return False

    def _touch(self, request, user) -> None:
        if _is_background(request):
            return
        last = request.session.get(LAST_ACTIVITY)
        if last and timezone.now() - datetime.fromisoformat(last) < TOUCH_EVERY:
            return
        now = timezone.now()
        request.session[LAST_ACTIVITY] = now.isoformat()
        updated = ConsoleSession.objects.filter(session_key=request.session.session_key).update(
            last_seen_at=now
        )
        if not updated:  # signed in before sessions were recorded, or re-keyed
            console_session_record(request=request, user=user)
        # An owner may have required the second factor since: checked with the activity.
        if request.session.get(TWO_FACTOR) != TwoFactor.VERIFIED:
            request.session[TWO_FACTOR] = two_factor_state_for(user=user)

    def _gate(self, request):
        state = request.session.get(TWO_FACTOR)
        if state not in (TwoFactor.VERIFY, TwoFactor.ENROL):
            return None
        if request.path.startswith(_gate_exempt_paths()):
            return None
        page = "two-factor-verify" if state == TwoFactor.VERIFY else "two-factor"
        after = request.get_full_path() if request.method == "GET" else reverse("admin:index")
        return HttpResponseRedirect(f"{reverse(page)}?{urlencode({'next': after})}")

    def _rekey(self, request) -> None:
        # Django gives the session a new key at sign-in and on a password change
        # (update_session_auth_hash): the row follows it.
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if session is None or user is None or not user.is_authenticated:
            return
        recorded = session.get(RECORDED_KEY)
        if recorded and session.session_key and recorded != session.session_key:
            console_session_record(request=request, user=user)
