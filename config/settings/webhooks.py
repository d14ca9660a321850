"""Provider callbacks (webhooks/): the secrets they are signed with, retries and sweeps."""

import hashlib

from config.settings.core import SECRET_KEY
from config.settings.environment import PRODUCTION, ImproperlyConfigured, declare, env
from config.settings.worker import CELERY_BEAT_SCHEDULE


# Provider callbacks (webhooks/). Providers sign their callbacks with these secrets; the
# development defaults are derived from SECRET_KEY so the sandbox provider can sign its own
# callbacks out of the box. In production an unset secret makes its receivers answer 503
# (never accept unsigned callbacks).
def _development_secret(purpose: str) -> str:
    return hashlib.sha256(f"{purpose}:{SECRET_KEY}".encode()).hexdigest()[:32]


# TWILIO_AUTH_TOKEN: the Twilio account's auth token; status callbacks are signed with it.
TWILIO_AUTH_TOKEN = env.str(
    "TWILIO_AUTH_TOKEN", default="" if PRODUCTION else _development_secret("twilio")
)
# ANYMAIL: django-anymail's settings as JSON (the ESP's API keys for sending), to which
# the webhook secrets below are added.
ANYMAIL = env.json("ANYMAIL", default={}) | {
    # ANYMAIL_WEBHOOK_SECRET: "user:password" expected as HTTP basic auth on every email
    # tracking webhook (comma-separated to accept several while rotating).
    "WEBHOOK_SECRET": env.list(
        "ANYMAIL_WEBHOOK_SECRET",
        default=[] if PRODUCTION else [f"sandbox:{_development_secret('anymail')}"],
    ),
}
# MAILGUN_WEBHOOK_SIGNING_KEY: Mailgun's HTTP webhook signing key (Mailgun callbacks answer
# 503 until it is set). SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY: SendGrid's signed event
# webhook public key (base64, without the PEM lines); when set, unsigned SendGrid callbacks
# are refused. anymail wants an unset key absent, not empty.
for _name in ("MAILGUN_WEBHOOK_SIGNING_KEY", "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY"):
    if env.str(_name, default=""):
        ANYMAIL[_name] = env.str(_name)
# WEBHOOK_RETRY_WINDOW: seconds a callback whose message is not known yet is retried (with
# backoff) before it is marked orphaned; a later Sent with that id still adopts it.
WEBHOOK_RETRY_WINDOW = env.int("WEBHOOK_RETRY_WINDOW", default=900)
# WEBHOOK_SWEEP_INTERVAL: seconds between sweeps that (re)process stored callbacks whose
# processing never ran (the broker was down) or is due for a retry.
WEBHOOK_SWEEP_INTERVAL = env.float("WEBHOOK_SWEEP_INTERVAL", default=5.0)
# SANDBOX_CALLBACK_DELAY: seconds the sandbox provider waits before sending itself a message's
# callbacks (0 sends them at once).
SANDBOX_CALLBACK_DELAY = env.float("SANDBOX_CALLBACK_DELAY", default=1.0)

CELERY_BEAT_SCHEDULE |= {
    # Process stored callbacks that were never enqueued (broker down) or are due a retry.
    "webhooks-inbox-sweep": {
        "task": "webhooks.tasks.inbox_sweep_task",
        "schedule": WEBHOOK_SWEEP_INTERVAL,
    },
    # Adopt orphaned callbacks whose message has been sent since.
    "webhooks-orphans-adopt": {"task": "webhooks.tasks.orphans_adopt_task", "schedule": 60.0},
}
if WEBHOOK_RETRY_WINDOW < 0 or WEBHOOK_SWEEP_INTERVAL <= 0 or SANDBOX_CALLBACK_DELAY < 0:
    raise ImproperlyConfigured(
        "WEBHOOK_RETRY_WINDOW and SANDBOX_CALLBACK_DELAY must be 0 or more seconds, "
        "WEBHOOK_SWEEP_INTERVAL more than 0."
    )
declare(
    "TWILIO_AUTH_TOKEN", "ANYMAIL", "ANYMAIL_WEBHOOK_SECRET", "MAILGUN_WEBHOOK_SIGNING_KEY",
    "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY", "WEBHOOK_RETRY_WINDOW",
    "WEBHOOK_SWEEP_INTERVAL", "SANDBOX_CALLBACK_DELAY",
)  # fmt: skip
