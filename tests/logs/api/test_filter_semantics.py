"""A channel with a status or an event speaks of that channel's delivery (docs/api.md, "Logs API"):
`channel=sms&status=failure` is a notification whose SMS failed, not one whose email failed
beside a delivered SMS. Over HTTP, on the list, a user's list, the export and query_logs."""

import json

import pytest

from tests.logs.api.conftest import make_log

pytestmark = pytest.mark.django_db

NUMBER = "+14155550100"


@pytest.fixture
def logs(environment):
    """Notifications to one number, oldest first, named by what happened to each channel."""
    outcomes = {
        "email bounced, sms delivered": {
            "email": ("failed", "bounce"),
            "sms": ("delivered", ""),
        },
        "sms undelivered, email delivered": {
            "sms": ("failed", "undelivered"),
            "email": ("delivered", ""),
        },
        "sms sent, email bounced": {"sms": ("sent", ""), "email": ("failed", "bounce")},
        "call busy, sms delivered": {"call": ("delivered", "busy"), "sms": ("delivered", "")},
    }
    return {
        name: make_log(
            environment,
            minutes=minutes,
            user_id="u-1",
            email="ada@example.com",
            number=NUMBER,
            outcomes=channels,
        )
        for minutes, (name, channels) in enumerate(outcomes.items(), start=1)
    }


def _names(logs, response) -> list[str]:
    assert response.status_code == 200, response.content
    by_id = {str(n.id): name for name, n in logs.items()}
    if response["Content-Type"].startswith("application/x-ndjson"):
        rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
        return [by_id[row["trackingId"]] for row in rows]
    body = response.json()
    rows = body.get("results", body.get("logs"))
    return [by_id[row.get("trackingId") or row.get("id")] for row in rows]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # docs/api.md's example: failed SMS to a phone number, in any spelling.
        ("channel=sms&status=failure&number=(415)%20555-0100",
         ["sms undelivered, email delivered"]),
        ("channel=sms&status=success",
         ["call busy, sms delivered", "email bounced, sms delivered"]),
        ("channel=sms&status=received", ["sms sent, email bounced"]),
        ("channel=email&status=failure",
         ["sms sent, email bounced", "email bounced, sms delivered"]),
        ("channel=sms&eventKind=failed", ["sms undelivered, email delivered"]),
        ("channel=sms&eventKind=delivered&status=success",
         ["call busy, sms delivered", "email bounced, sms delivered"]),
        ("channel=sms&eventSubKind=bounce", []),
        ("channel=call&channel=sms&eventKind=failed", ["sms undelivered, email delivered"]),
        ("channel=sms&channel=call&status=failure", ["sms undelivered, email delivered"]),
        ("channel=email&eventSubKind=bounce&userId=u-1",
         ["sms sent, email bounced", "email bounced, sms delivered"]),
        # Without a channel, a status is the whole notification's and an event any of its own.
        ("status=failure", ["sms sent, email bounced", "sms undelivered, email delivered",
                            "email bounced, sms delivered"]),
        ("eventKind=delivered&status=failure",
         ["sms undelivered, email delivered", "email bounced, sms delivered"]),
    ],
)  # fmt: skip
def test_a_channel_with_a_status_or_an_event_matches_that_channels_delivery(
    api, logs, query, expected
):
    assert _names(logs, api.get(f"/api/v1/logs?{query}")) == expected
    user_query = query.replace("&userId=u-1", "")  # the user is in the path
    assert _names(logs, api.get(f"/api/v1/users/u-1/logs?{user_query}")) == expected
    assert _names(logs, api.get(f"/api/v1/logs/export?format=ndjson&{query}")) == expected


def test_a_provider_message_id_with_a_status_is_that_deliverys_status(api, logs):
    bounced = logs["email bounced, sms delivered"]
    email_id = f"msg-{bounced.id.hex[:12]}-email"
    sms_id = f"msg-{bounced.id.hex[:12]}-sms"
    assert _names(logs, api.get(f"/api/v1/logs?providerMessageId={email_id}&status=failure")) == [
        "email bounced, sms delivered"
    ]
    assert _names(logs, api.get(f"/api/v1/logs?providerMessageId={sms_id}&status=failure")) == []


def test_query_logs_channel_and_status_filters_match_one_delivery(api, environment, logs):
    response = api.post(
        f"/{environment.client_id}/logs/query",
        {"channelFilter": ["SMS"], "statusFilter": ["FAILURE"]},
        format="json",
    )
    assert _names(logs, response) == ["sms undelivered, email delivered"]
