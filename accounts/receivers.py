"""Signal receivers of console sign-in, sign-out and password changes (connected in
accounts.apps)."""

from django.contrib.auth import get_user_model

from accounts.models import ConsoleSession
from accounts.sessions import TWO_FACTOR, console_session_record, console_sessions_end
from accounts.two_factor import two_factor_state_for


def on_user_logged_in(sender, request, user, **kwargs) -> None:
    """A new session: recorded for the Sessions page, and told whether it must enter a code
    (or set an app up) before anything else."""
    session = getattr(request, "session", None)
    if session is None:
        return
    console_session_record(request=request, user=user)
    session[TWO_FACTOR] = two_factor_state_for(user=user)


def on_user_logged_out(sender, request, user, **kwargs) -> None:
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        ConsoleSession.objects.filter(session_key=session.session_key).delete()


def on_user_pre_save(sender, instance, update_fields=None, **kwargs) -> None:
    """A changed password ends every session of the user. Django would refuse them at their
    next request anyway (the session's auth hash no longer matches); ending them here also
    takes them off the Sessions page. The session that changed the password lives on:
    update_session_auth_hash gives it a new key and saves it again, and the middleware
    records it under that key."""
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = (
        get_user_model().objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    )
    if stored is not None and stored != instance.password:
        console_sessions_end(user=instance)
