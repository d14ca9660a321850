import base64
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from logs.services import event_record, notification_create
from tests.factories import ApiKeyFactory, EnvironmentFactory

SECRET = "secret-for-the-logs-api-tests"
# Yesterday: inside any date range the API allows, whatever day the tests run.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture(autouse=True)
def _fresh_throttle_counts(settings):
    # Each test starts with an empty rate-limit window (Redis db of this test run).
    settings.LOGS_API_THROTTLE_RATE = "100000/minute"
    caches["default"].clear()


@pytest.fixture
def environment():
    return EnvironmentFactory(client_secret=SECRET)


@pytest.fixture
def other_environment():
    return EnvironmentFactory(client_secret=SECRET + "-other")


def client_for(environment, secret: str = SECRET) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(environment.client_id, secret))
    return client


@pytest.fixture
def api(environment) -> APIClient:
    return client_for(environment)


def bearer_client(plain_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain_key}")
    return client


def read_key(environment, scopes=("read",)):
    return ApiKeyFactory(environment=environment, scopes=list(scopes))


def make_log(
    environment,
    *,
    minutes: float = 0,
    type: str = "order_tracking",
    user_id: str = "user-1",
    email: str = "",
    number: str = "",
    merge_tags: dict | None = None,
    outcomes: dict | None = None,
    created_at: datetime | None = None,
):
    """A notification as the send pipeline records it: the request body verbatim, Sent per
    channel with a provider message id, then each channel's outcome event.
    `outcomes` maps channel -> (kind, sub_kind)."""
    created_at = created_at or T0 + timedelta(minutes=minutes)
    request = {
        "notificationId": type,
        "user": {"id": user_id, **({"email": email} if email else {})},
        "mergeTags": merge_tags or {},
    }
    if number:
        request["user"]["number"] = number
    notification = notification_create(
        environment_id=environment.id,
        notification_type=type,
        user_id=user_id,
        email=email,
        number=number,
        merge_tags=merge_tags or {},
        request=request,
        created_at=created_at,
    )
    for channel, (kind, sub_kind) in (outcomes or {}).items():
        event_record(
            notification_id=notification.id,
            kind="sent",
            channel=channel,
            source="sandbox",
            occurred_at=created_at + timedelta(seconds=1),
            delivery_fields={
                "provider": "sandbox",
                "provider_message_id": f"msg-{notification.id.hex[:12]}-{channel}",
                "subject": f"Subject for {user_id}",
                "text": f"Body for {user_id}",
            },
        )
        if kind != "sent":
            event_record(
                notification_id=notification.id,
                kind=kind,
                sub_kind=sub_kind,
                channel=channel,
                source="sandbox",
                occurred_at=created_at + timedelta(seconds=2),
                detail=f"{kind} {sub_kind}".strip(),
            )
    notification.refresh_from_db()
    return notification
