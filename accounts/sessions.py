"""Console sessions: who is signed in where, the idle limit, and the second-factor state.

Django's session table cannot be searched by user, so each signed-in session has a
ConsoleSession row beside it (written at sign-in, then at most once a minute of activity).
A person sees theirs on the Sessions page and ends any of them; a password change ends all
but the one that changed it.

The middleware (accounts/middleware.py) keeps the per-request cost at nothing in the common
case: what it needs (the last activity, whether the second factor is pending) lives in the
session itself, and the database is touched once a minute of activity, never per request."""

from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

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
