"""A read API key marked masked (ApiKey.masked) reads every address masked, on every answer
of the logs API: the full address is nowhere in the body. An unmasked key is the control."""

import pytest

from logs.services import event_record
from tests.logs.api.conftest import T0, bearer_client, make_log, read_key

EMAIL, NUMBER = "olivia@example.com", "+447700903217"
SHOWN_EMAIL, SHOWN_NUMBER = "o•••@example.com", "+44 ••• ••3217"


@pytest.fixture
def olivia(environment):
    notification = make_log(
        environment,
        user_id="usr_olivia",
        email=EMAIL,
        number=NUMBER,
        merge_tags={"contact": EMAIL},
        outcomes={"email": ("delivered", ""), "sms": ("delivered", "")},
    )
    # What a provider's callback carries: the recipient in a raw payload, URL-encoded too.
    event_record(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        kind="engagement",
        sub_kind="opened",
        channel="email",
        source="sandbox",
        detail=f"opened by {EMAIL}",
        payload={"recipient": EMAIL, "link": "https://t.example/?to=olivia%40example.com"},
    )
    return notification


def _answers(client, environment, notification) -> dict[str, str]:
    since = T0.isoformat().replace("+00:00", "Z")
    return {
        "list": client.get("/api/v1/logs").content.decode(),
        "user list": client.get("/api/v1/users/usr_olivia/logs").content.decode(),
        "detail": client.get(f"/api/v1/logs/{notification.id}").content.decode(),
        "csv": b"".join(
            client.get("/api/v1/logs/export", {"format": "csv", "createdFrom": since})
        ).decode(),
        "ndjson": b"".join(
            client.get("/api/v1/logs/export", {"format": "ndjson", "createdFrom": since})
        ).decode(),
        "logs/query": client.post(
            f"/{environment.client_id}/logs/query", {}, format="json"
        ).content.decode(),
    }


@pytest.mark.django_db
def test_a_masked_read_key_never_reads_a_full_address(environment, olivia):
    key = read_key(environment)
    key.masked = True
    key.save()
    for answer, body in _answers(bearer_client(key.plain), environment, olivia).items():
        assert EMAIL not in body, answer
        assert "olivia%40example.com" not in body, answer
        assert "447700903217" not in body, answer
        shown = body.replace("\\u2022", "•")  # NDJSON escapes the dots, DRF does not
        assert SHOWN_EMAIL in shown and SHOWN_NUMBER in shown, answer


@pytest.mark.django_db
def test_an_unmasked_read_key_reads_addresses_in_full(environment, olivia):
    for answer, body in _answers(
        bearer_client(read_key(environment).plain), environment, olivia
    ).items():
        assert EMAIL in body, answer
        assert NUMBER in body or "447700903217" in body, answer
