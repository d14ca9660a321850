"""Examples and long descriptions for the logs API's OpenAPI schema (kept out of the views so
the views stay readable)."""

from drf_spectacular.utils import OpenApiExample

TRACKING_ID = "6f1c2b1e-8a54-4c1b-9a3e-2f0d6f6c7a10"
_LOG = {
    "trackingId": TRACKING_ID,
    "type": "password_reset",
    "userId": "user-42",
    "email": "ada@example.com",
    "number": "+14155550100",
    "status": "failure",
    "createdAt": "2026-11-26T09:15:02.120000Z",
    "updatedAt": "2026-11-26T09:15:04.480000Z",
    "deliveries": [{"channel": "email", "state": "failed", "stateDetail": "bounce"}],
}

LOG_PAGE = OpenApiExample(
    "A page",
    response_only=True,
    status_codes=["200"],
    value={
        "results": [_LOG],
        "next": "MjAyNi0xMS0yNlQwOToxNTowMi4xMjArMDA6MDB8NmYxYzJi:sig",
        "stoppedEarly": False,
        "searchedBackTo": None,
    },
)

BAD_STATUS = OpenApiExample(
    "An unknown status",
    response_only=True,
    status_codes=["400"],
    value={"message": 'status[0]: "sucess" is not valid: use one of received, success, failure.'},
)

LOG_DETAIL = OpenApiExample(
    "A bounced password reset",
    response_only=True,
    status_codes=["200"],
    value={
        **_LOG,
        "timezone": "Europe/London",
        "mergeTags": {"firstName": "Ada", "resetUrl": "https://example.com/r/abc"},
        "request": {
            "notificationId": "password_reset",
            "user": {"id": "user-42", "email": "ada@example.com"},
            "mergeTags": {"firstName": "Ada", "resetUrl": "https://example.com/r/abc"},
        },
        "scheduledFor": None,
        "contentCleared": None,
        "deliveries": [
            {
                "channel": "email",
                "state": "failed",
                "stateDetail": "bounce",
                "provider": "amazon_ses",
                "providerMessageId": "0100018c-5e4f-4f3a-9a59-6c1b7d2e0e11-000000",
                "destination": "ada@example.com",
                "subject": "Reset your password",
                "html": "<p>Hi Ada, <a href='https://example.com/r/abc'>reset it</a>.</p>",
                "text": "Hi Ada, reset it: https://example.com/r/abc",
                "errorCode": "5.1.1",
                "errorMessage": "The email account that you tried to reach does not exist.",
                "sentAt": "2026-11-26T09:15:02.900000Z",
                "deliveredAt": None,
                "failedAt": "2026-11-26T09:15:04.480000Z",
                "updatedAt": "2026-11-26T09:15:04.480000Z",
            }
        ],
        "timeline": [
            {
                "label": "Received",
                "kind": "received",
                "subKind": "",
                "channel": "",
                "occurredAt": "2026-11-26T09:15:02.120000Z",
                "recordedAt": "2026-11-26T09:15:02.120000Z",
                "source": "api",
                "detail": "The request was accepted.",
            },
            {
                "label": "Failed - Bounce",
                "kind": "failed",
                "subKind": "bounce",
                "channel": "email",
                "occurredAt": "2026-11-26T09:15:04.480000Z",
                "recordedAt": "2026-11-26T09:15:04.610000Z",
                "source": "amazon_ses",
                "detail": "5.1.1 The email account that you tried to reach does not exist.",
            },
        ],
    },
)

EXPORT_NDJSON = OpenApiExample(
    "NDJSON",
    value='{"trackingId": "6f1c2b1e-8a54-4c1b-9a3e-2f0d6f6c7a10", "createdAt": '
    '"2026-11-26T09:15:02.120000+00:00", "updatedAt": "2026-11-26T09:15:04.480000+00:00", '
    '"type": "password_reset", "userId": "user-42", "email": "ada@example.com", "number": '
    '"+14155550100", "status": "failure", "channels": ["EMAIL"]}\n',
)
EXPORT_CSV = OpenApiExample(
    "CSV",
    value="trackingId,createdAt,updatedAt,type,userId,email,number,status,channels\n"
    "6f1c2b1e-8a54-4c1b-9a3e-2f0d6f6c7a10,2026-11-26T09:15:02.120000+00:00,"
    "2026-11-26T09:15:04.480000+00:00,password_reset,user-42,ada@example.com,+14155550100,"
    "failure,EMAIL\n",
)

QUERY_DESCRIPTION = """NotificationAPI's `query_logs` (the official SDKs call it unchanged).
Filters AND; the values of one filter OR; `statusFilter` ignores case. The answer is newest
first, `limit` records at most (default 100, at most 1000), with `nextToken` when more follow.
`envIdFilter` naming only other environments answers no logs: a credential reads its own
environment only. `customFilter` is not supported (400): use `requestFilter`.

`requestFilter` expressions, evaluated by PostgreSQL over the original send body:

- a property: `request.…` (`request.mergeTags.item`, `request.user.email`,
  `request.mergeTags.products[0].sku.title`, `request.mergeTags.items[*].sku`) or `trackingId`,
  with or without a `$.` prefix; an array on the way matches when any element does;
- `=` `!=` (a missing property is `!=` anything), and `>` `>=` `<` `<=` on numbers;
- values: "double" or 'single' quoted strings, where `*` is a wildcard (`\\*` a star), numbers,
  or a bare word (a string);
- `IS NULL`, `IS TRUE`, `IS FALSE`, `IS NOT …` (present and not that), `EXISTS`, `NOT EXISTS`;
- `&&`, `||` and parentheses. Several expressions in the list OR.

A malformed expression answers 400 saying where parsing stopped. A GIN index answers `=` of a
string or a number and `IS NULL|TRUE|FALSE` on any request path, an `&&` with at least one of
them, and an `||` of them only. Wildcards, ranges, `!=`, `EXISTS`, `NOT EXISTS`, `IS NOT` and
any expression naming `trackingId` are checked row by row on the rows the other filters and the
date range select, so give those for a large environment."""

QUERY_REQUESTS = [
    OpenApiExample(
        "Failed emails of two users since a time",
        request_only=True,
        value={
            "dateRangeFilter": {"startTime": 1764144000000},
            "userFilter": ["user-42", "user-43"],
            "channelFilter": ["EMAIL"],
            "statusFilter": ["FAILURE"],
        },
    ),
    OpenApiExample(
        "By a nested merge tag",
        request_only=True,
        value={
            "notificationFilter": ["order_tracking"],
            "requestFilter": [
                'request.mergeTags.item="Krabby Patty Burger" && request.mergeTags.qty >= 2',
                'request.user.email = "*@gmail.com"',
            ],
            "limit": 50,
        },
    ),
]

QUERY_RESPONSE = OpenApiExample(
    "Logs",
    response_only=True,
    status_codes=["200"],
    value={
        "logs": [
            {
                "trackingId": TRACKING_ID,
                "notificationId": "password_reset",
                "userId": "user-42",
                "envId": "6ok6imq9unr2budgiebjdaa6oi",
                "channels": ["EMAIL"],
                "status": "failure",
                "request": {
                    "notificationId": "password_reset",
                    "user": {"id": "user-42", "email": "ada@example.com"},
                },
                "createdAt": 1764148502120,
                "events": [
                    {
                        "type": "Received",
                        "subType": None,
                        "channel": None,
                        "time": 1764148502120,
                        "detail": "The request was accepted.",
                    },
                    {
                        "type": "Failed",
                        "subType": "Bounce",
                        "channel": "EMAIL",
                        "time": 1764148504480,
                        "detail": "5.1.1 The email account does not exist.",
                    },
                ],
            }
        ],
        "nextToken": "MjAyNi0xMS0yNlQwOToxNTowMi4xMjArMDA6MDB8NmYxYzJi:sig",
    },
)

BAD_REQUEST_FILTER = OpenApiExample(
    "A malformed requestFilter",
    response_only=True,
    status_codes=["400"],
    value={
        "message": "requestFilter[0]: expected a value after '=' at the end.",
    },
)
