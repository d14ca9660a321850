"""Sending (notifications/): the providers per channel, email and Twilio, retries, the outbox
sweeper and the fences around tenants' templates."""

from celery.schedules import crontab

from config.settings.environment import (
    PRODUCTION,
    TESTING,
    VAR_DIR,
    ImproperlyConfigured,
    declare,
    env,
)
from config.settings.worker import CELERY_BEAT_SCHEDULE

# Sending (notifications/). Providers per channel: "sandbox" (no message leaves the machine;
# outcomes follow the magic recipients in docs/architecture.md), "email" (Django's email
# API: EMAIL_BACKEND picks SMTP or a django-anymail ESP), "twilio" (SMS and calls). In-app is
# always the feed; push and web push have no provider yet. An environment may override these
# in the console. In production SMS and calls default to Twilio once TWILIO_ACCOUNT_SID is
# set, else to "none" (each such send fails with "no provider configured for this channel").
_TWILIO_OR_NONE = "twilio" if env.str("TWILIO_ACCOUNT_SID", default="") else "none"
SEND_PROVIDERS = {
    "email": env.str("SEND_PROVIDER_EMAIL", default="email" if PRODUCTION else "sandbox"),
    "sms": env.str("SEND_PROVIDER_SMS", default=_TWILIO_OR_NONE if PRODUCTION else "sandbox"),
    "call": env.str("SEND_PROVIDER_CALL", default=_TWILIO_OR_NONE if PRODUCTION else "sandbox"),
}
# EMAIL_BACKEND: Django's email backend for notification emails, e.g.
# django.core.mail.backends.smtp.EmailBackend (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER,
# EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, EMAIL_TIMEOUT) or a django-anymail ESP such as
# anymail.backends.amazon_ses.EmailBackend (configured by the ANYMAIL JSON, below). Django 6.1 reads
# them as its MAILERS setting.
# In development (not under tests) the default is the local mailbox, config.mailbox.EmailBackend:
# every message is kept in MAILBOX_DIR (.var/mailbox/) and superusers read it at /admin/mailbox/;
# nothing leaves the machine.
EMAIL_BACKEND_PATH = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION or TESTING
    else "config.mailbox.EmailBackend",
)
# MAILBOX_DIR: where the development mailbox keeps messages, one .eml file each.
MAILBOX_DIR = env.str("MAILBOX_DIR", default=str(VAR_DIR / "mailbox"))
MAILBOX_ENABLED = EMAIL_BACKEND_PATH == "config.mailbox.EmailBackend"
_SMTP_OPTIONS = {
    "host": env.str("EMAIL_HOST", default="127.0.0.1"),
    "port": env.int("EMAIL_PORT", default=25),
    "username": env.str("EMAIL_HOST_USER", default=""),
    "password": env.str("EMAIL_HOST_PASSWORD", default=""),
    "use_tls": env.bool("EMAIL_USE_TLS", default=False),
    "timeout": env.int("EMAIL_TIMEOUT", default=15),
}
MAILERS = {
    "default": {
        "BACKEND": EMAIL_BACKEND_PATH,
        "OPTIONS": _SMTP_OPTIONS if EMAIL_BACKEND_PATH.endswith("smtp.EmailBackend") else {},
    }
}
# DEFAULT_FROM_EMAIL: the sender of notification emails unless a send names another.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="notifications@example.com")
# Twilio (SMS and voice): the account, the number messages and calls come from (the auth
# token, TWILIO_AUTH_TOKEN, is set with the webhooks' settings below). TWILIO_API_BASE_URL
# points the client at another host speaking Twilio's REST protocol (tests use a local one).
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
# TWILIO_AUTH_TOKEN: below, with the provider callbacks it also signs.
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com").rstrip("/")
# SEND_MAX_ATTEMPTS: provider calls per channel on transient errors (timeouts, 5xx, 429);
# SEND_RETRY_BACKOFF_SECONDS: the first wait, doubled after each attempt.
SEND_MAX_ATTEMPTS = env.int("SEND_MAX_ATTEMPTS", default=3)
SEND_RETRY_BACKOFF_SECONDS = env.float("SEND_RETRY_BACKOFF_SECONDS", default=2.0)
# OUTBOX_SWEEP_AFTER_SECONDS: an accepted send no worker took within this long is re-enqueued
# by the sweeper (beat, every OUTBOX_SWEEP_INTERVAL_SECONDS). OUTBOX_LEASE_SECONDS: how long a
# worker's claim on a notification lasts per provider attempt (renewed before each) before the
# sweeper assumes it died and another worker may take it: keep it well above the slowest
# provider call plus the retry wait (EMAIL_TIMEOUT, SEND_RETRY_BACKOFF_SECONDS).
OUTBOX_SWEEP_AFTER_SECONDS = env.float("OUTBOX_SWEEP_AFTER_SECONDS", default=5.0)
OUTBOX_SWEEP_INTERVAL_SECONDS = env.float("OUTBOX_SWEEP_INTERVAL_SECONDS", default=2.0)
OUTBOX_LEASE_SECONDS = env.float("OUTBOX_LEASE_SECONDS", default=60.0)
# DISPATCH_CALLS_PER_TRANSACTION: how many provider calls of a dispatch batch share their
# recording: one transaction records their Sendings, the calls are made (at once where the
# provider can), one records their outcomes. A worker killed between the two sends those
# channels again: up to this many messages repeated instead of one (see notifications/sending).
DISPATCH_CALLS_PER_TRANSACTION = env.int("DISPATCH_CALLS_PER_TRANSACTION", default=32)
if DISPATCH_CALLS_PER_TRANSACTION < 1:
    raise ImproperlyConfigured(
        "DISPATCH_CALLS_PER_TRANSACTION must be at least 1 (1: one provider call per transaction)."
    )
# SANDBOX_SEND_DELAY_SECONDS: how long the sandbox provider takes to accept a message (0: at
# once; tests raise it to land a worker kill inside the provider call).
SANDBOX_SEND_DELAY_SECONDS = env.float("SANDBOX_SEND_DELAY_SECONDS", default=0.0)
# Templates come from tenants (inline content in any send, the console's catalogue), so every
# render is fenced (notifications/rendering.py); a render over a limit fails its channel with
# the limit's name. TEMPLATE_LOOP_ITERATION_LIMIT: loop iterations in one render (nested loops
# multiply), also the longest list a filter may take or make. TEMPLATE_OUTPUT_LIMIT_BYTES: the
# most one part (subject, HTML, text) may render to, also the longest string a filter may take
# or make. TEMPLATE_LOCAL_NAMESPACE_LIMIT_BYTES: what the variables a template assigns may
# hold. TEMPLATE_RENDER_TIMEOUT_SECONDS: wall-clock time for one part. TEMPLATE_INLINE_MAX_CHARS:
# the longest inline template a send may carry (a longer one is refused with 400).
TEMPLATE_LOOP_ITERATION_LIMIT = env.int("TEMPLATE_LOOP_ITERATION_LIMIT", default=10_000)
TEMPLATE_OUTPUT_LIMIT_BYTES = env.int("TEMPLATE_OUTPUT_LIMIT_BYTES", default=500_000)
TEMPLATE_LOCAL_NAMESPACE_LIMIT_BYTES = env.int(
    "TEMPLATE_LOCAL_NAMESPACE_LIMIT_BYTES", default=1_000_000
)
TEMPLATE_RENDER_TIMEOUT_SECONDS = env.float("TEMPLATE_RENDER_TIMEOUT_SECONDS", default=2.0)
TEMPLATE_INLINE_MAX_CHARS = env.int("TEMPLATE_INLINE_MAX_CHARS", default=100_000)
# SEND_EMAIL_MAX_CC, SEND_EMAIL_MAX_BCC: the most cc and bcc addresses one send may name
# (options.email.ccAddresses, bccAddresses); more is refused with 400.
SEND_EMAIL_MAX_CC = env.int("SEND_EMAIL_MAX_CC", default=10)
SEND_EMAIL_MAX_BCC = env.int("SEND_EMAIL_MAX_BCC", default=10)
CELERY_BEAT_SCHEDULE["notifications-outbox-sweep"] = {
    "task": "notifications.tasks.outbox_sweep_task",
    "schedule": OUTBOX_SWEEP_INTERVAL_SECONDS,
    # A sweep nobody ran soon is superseded by the next: never let them pile up.
    "options": {"expires": OUTBOX_SWEEP_INTERVAL_SECONDS * 5},
}
# Idempotency keys, in-app feed items and the sandbox's record live as long as the logs.
CELERY_BEAT_SCHEDULE["notifications-send-tables-purge"] = {
    "task": "notifications.tasks.send_tables_purge_task",
    "schedule": crontab(hour=3, minute=45),
}

declare(
    "SEND_PROVIDER_EMAIL", "SEND_PROVIDER_SMS", "SEND_PROVIDER_CALL", "EMAIL_BACKEND",
    "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS",
    "EMAIL_TIMEOUT", "DEFAULT_FROM_EMAIL", "MAILBOX_DIR", "TWILIO_ACCOUNT_SID",
    "TWILIO_FROM_NUMBER", "TWILIO_API_BASE_URL", "SEND_MAX_ATTEMPTS",
    "SEND_RETRY_BACKOFF_SECONDS", "OUTBOX_SWEEP_AFTER_SECONDS", "OUTBOX_SWEEP_INTERVAL_SECONDS",
    "OUTBOX_LEASE_SECONDS", "DISPATCH_CALLS_PER_TRANSACTION", "SANDBOX_SEND_DELAY_SECONDS",
    "TEMPLATE_LOOP_ITERATION_LIMIT", "TEMPLATE_OUTPUT_LIMIT_BYTES",
    "TEMPLATE_LOCAL_NAMESPACE_LIMIT_BYTES", "TEMPLATE_RENDER_TIMEOUT_SECONDS",
    "TEMPLATE_INLINE_MAX_CHARS", "SEND_EMAIL_MAX_CC", "SEND_EMAIL_MAX_BCC",
)  # fmt: skip
