"""Console sessions: who is signed in where, the idle limit, and the second-factor gate.

Django's session table cannot be searched by user, so each signed-in session has a
ConsoleSession row beside it (written at sign-in, then at most once a minute of activity).
A person sees theirs on the Sessions page and ends any of them; a password change ends all
but the one that changed it.

The middleware keeps the per-request cost at nothing in the common case: what it needs (the
last activity, whether the second factor is pending) lives in the session itself, and the
database is touched once a minute of activity, never per request."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from accounts.models import ConsoleSession

# Keys this module keeps in the session.
LAST_ACTIVITY = "accounts.last_activity"
RECORDED_KEY = "accounts.recorded_session_key"
TWO_FACTOR = "accounts.two_factor"
# Activity is written to the database at most this often per session.
TOUCH_EVERY = timedelta(minutes=1)


class TwoFactor:
    """The session's second-factor state (session[TWO_FACTOR])."""

    VERIFIED = "verified"  # the code was entered in this session
    NOT_NEEDED = "not_needed"  # no device and nothing requires one
    VERIFY = "verify"  # a device: the code must be entered before anything else
    ENROL = "enrol"  # required but no device: set one up before anything else


def idle_limit() -> timedelta:
    return timedelta(minutes=settings.CONSOLE_SESSION_IDLE_MINUTES)


def client_address(request) -> str | None:
    # REMOTE_ADDR, as the login lockout uses: behind a proxy it is the proxy's.
    return request.META.get("REMOTE_ADDR") or None


def console_session_record(*, request, user) -> ConsoleSession | None:
    """Record (or re-key) the request's session for `user`: at sign-in, and when Django gave
    the session a new key (a password change keeps the current session under a new key)."""
    key = request.session.session_key
    if not key:
        return None
    now = timezone.now()
    previous = request.session.get(RECORDED_KEY)
    with transaction.atomic():
        if previous and previous != key:
            ConsoleSession.objects.filter(session_key=previous).delete()
        row, _ = ConsoleSession.objects.update_or_create(
            session_key=key,
            defaults={"user": user, "last_seen_at": now},
            create_defaults={
                "user": user,
                "created_at": now,
                "last_seen_at": now,
                "ip_address": client_address(request),
                "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
            },
        )
    request.session[RECORDED_KEY] = key
    request.session[LAST_ACTIVITY] = now.isoformat()
    return row


def console_session_list_for_user(*, user) -> QuerySet[ConsoleSession]:
    """The user's sessions that still let someone in: their Django session exists and has
    not expired, and they were used within the idle limit."""
    now = timezone.now()
    live = Session.objects.filter(expire_date__gt=now).values("session_key")
    return ConsoleSession.objects.filter(
        user=user, session_key__in=live, last_seen_at__gt=now - idle_limit()
    ).order_by("-last_seen_at")


def console_sessions_end(*, user, ids=None, keep_session_key: str | None = None) -> int:
    """End the user's sessions (those of `ids`, or all), except the one keyed
    `keep_session_key`. Returns how many ended. The browsers holding them are signed out at
    their next request."""
    rows = ConsoleSession.objects.filter(user=user)
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    if keep_session_key:
        rows = rows.exclude(session_key=keep_session_key)
    with transaction.atomic():
        keys = list(rows.values_list("session_key", flat=True))
        Session.objects.filter(session_key__in=keys).delete()
        ConsoleSession.objects.filter(session_key__in=keys).delete()
    return len(keys)


def console_sessions_purge() -> int:
    """Expired Django sessions and the rows of sessions that are gone (beat, nightly)."""
    Session.objects.filter(expire_date__lte=timezone.now()).delete()
    gone, _ = ConsoleSession.objects.exclude(
        session_key__in=Session.objects.values("session_key")
    ).delete()
    return gone


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
        from accounts.two_factor import two_factor_state_for

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
