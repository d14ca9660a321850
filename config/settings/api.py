"""The HTTP APIs: Django REST framework, the OpenAPI description, rate limits and exports."""

import re

from config.settings.environment import ImproperlyConfigured, declare, env

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
    raise ImproperlyConfigured(
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
if LOGS_API_QUERY_TIMEOUT_MS < 1:
    raise ImproperlyConfigured("LOGS_API_QUERY_TIMEOUT_MS must be at least 1.")
if LOGS_API_MAX_DATE_RANGE_DAYS < 1:
    raise ImproperlyConfigured("LOGS_API_MAX_DATE_RANGE_DAYS must be at least 1.")
for _name, _rate in [
    ("LOGS_API_THROTTLE_RATE", LOGS_API_THROTTLE_RATE),
    ("SEND_API_THROTTLE_RATE", SEND_API_THROTTLE_RATE),
    ("USER_API_THROTTLE_RATE", USER_API_THROTTLE_RATE),
]:
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", _rate):
        raise ImproperlyConfigured(
            f"{_name}={_rate!r} is not a rate: write e.g. "
            "600/minute (count/second, minute, hour or day)."
        )
declare(
    "LOGS_API_THROTTLE_RATE", "LOGS_API_MAX_DATE_RANGE_DAYS", "LOGS_API_QUERY_TIMEOUT_MS",
    "EXPORT_MAX_CONCURRENT", "EXPORT_SLOT_TTL_SECONDS", "SEND_API_THROTTLE_RATE",
    "USER_API_THROTTLE_RATE",
)  # fmt: skip
