"""Accounts and console users (accounts/): invitations, the login lockout, two-factor logins,
idle sessions and the removal of deleted tenants."""

from datetime import timedelta

from celery.schedules import crontab

from config.settings.environment import ImproperlyConfigured, declare, env
from config.settings.worker import CELERY_BEAT_SCHEDULE

# INVITATION_EXPIRY_DAYS: days the link in an invitation email works (accounts/invitations.py).
INVITATION_EXPIRY_DAYS = env.int("INVITATION_EXPIRY_DAYS", default=7)
# Console logins are locked per username and client address after LOGIN_FAILURE_LIMIT failed
# attempts, for LOGIN_LOCKOUT_MINUTES after the last one (django-axes; each attempt during the
# lockout starts it again). Superusers see lockouts in the admin (Axes > Access attempts) and
# lift one by deleting its row. Behind a proxy the address is the proxy's (REMOTE_ADDR), so the
# lockout is then per username.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
# Its app and middleware (last, as axes asks) are in config/settings/core.py.
# Axes's backend first: it refuses a locked-out login before the password is checked, and
# refuses any authenticate() without a request (tests sign in with force_login or the form).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
# Username and address together: a stranger guessing from elsewhere cannot lock a person out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# Failed attempts are kept (and expire with the cool-off); a row per successful login is not.
AXES_DISABLE_ACCESS_LOG = True
declare(
    "INVITATION_EXPIRY_DAYS", "LOGIN_FAILURE_LIMIT", "LOGIN_LOCKOUT_MINUTES",
)  # fmt: skip
if INVITATION_EXPIRY_DAYS < 1 or LOGIN_FAILURE_LIMIT < 1 or LOGIN_LOCKOUT_MINUTES < 1:
    raise ImproperlyConfigured(
        "INVITATION_EXPIRY_DAYS, LOGIN_FAILURE_LIMIT and LOGIN_LOCKOUT_MINUTES must be at least 1."
    )
# Two-factor logins (accounts/two_factor.py): a TOTP authenticator app and single-use recovery
# codes (django-otp's models). Who must use it: members of an account whose owners turned on
# "require two-factor login", and every superuser in production; anyone may turn it on.
# Its apps are in config/settings/core.py.
# The name authenticator apps show beside the code.
OTP_TOTP_ISSUER = "Notification log"
# CONSOLE_SESSION_IDLE_MINUTES: a console session ends after this many minutes without a
# request from the person (a page's own background refresh does not count)
# (accounts/middleware.py).
CONSOLE_SESSION_IDLE_MINUTES = env.int("CONSOLE_SESSION_IDLE_MINUTES", default=30)
if CONSOLE_SESSION_IDLE_MINUTES < 1:
    raise ImproperlyConfigured(
        "CONSOLE_SESSION_IDLE_MINUTES must be at least 1 (minutes without activity before a "
        "console session ends)."
    )
# The middleware ends a session at the idle limit itself (activity is recorded in the session
# at most once a minute). The cookie and row outlive it by 12 hours so that a person coming back
# the same day is told why they were signed out, rather than meeting a bare login page; the
# rows go with the nightly purge.
SESSION_COOKIE_AGE = (CONSOLE_SESSION_IDLE_MINUTES + 12 * 60) * 60
# accounts.middleware.ConsoleSessionMiddleware (in config/settings/core.py) ends it.
declare("CONSOLE_SESSION_IDLE_MINUTES")
CELERY_BEAT_SCHEDULE["console-sessions-purge"] = {
    "task": "accounts.tasks.console_sessions_purge_task",
    "schedule": crontab(hour=3, minute=40),
}
# Resume removing deleted environments and accounts a dead worker left unfinished.
CELERY_BEAT_SCHEDULE["accounts-tenant-deletions-resume"] = {
    "task": "accounts.tasks.tenant_deletions_resume_task",
    "schedule": 600.0,
}
