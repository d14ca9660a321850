"""Calls to addresses tenants gave (stream subscribers, alert webhooks): the fence around them."""

from config.settings.environment import PRODUCTION, ImproperlyConfigured, declare, env

# Outbound calls to addresses a tenant gave (stream subscribers, alert webhooks) go through
# config/outbound.py: https only, public addresses only, no redirects, a wall-clock deadline.
# OUTBOUND_ALLOW_LOOPBACK_HTTP: also accept plain http:// (and https://) to 127.0.0.1, ::1 or
# localhost, for a receiver on the same machine while building an integration. Development
# only: production refuses to turn it on.
OUTBOUND_ALLOW_LOOPBACK_HTTP = env.bool("OUTBOUND_ALLOW_LOOPBACK_HTTP", default=not PRODUCTION)
if PRODUCTION and OUTBOUND_ALLOW_LOOPBACK_HTTP:
    raise ImproperlyConfigured(
        "OUTBOUND_ALLOW_LOOPBACK_HTTP lets tenants make the install call its own machine: it "
        "is for development only. Unset it in production."
    )
declare("OUTBOUND_ALLOW_LOOPBACK_HTTP")
