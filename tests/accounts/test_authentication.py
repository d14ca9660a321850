"""Mapping a request's Authorization header to an environment and scopes, in
`credentials_from_request` and over HTTP through `GET /api/v1/environment`."""

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accounts.authentication import AuthenticationFailed, credentials_from_request
from accounts.services import api_key_revoke
from tests.factories import ApiKeyFactory, EnvironmentFactory

pytestmark = pytest.mark.django_db

ENVIRONMENT_URL = "/api/v1/environment"
# What every refusal for a missing or malformed header tells the caller to send.
WHAT_TO_SEND = "Send 'Authorization: Basic base64(clientId:clientSecret)'"
INVALID = "Invalid credentials: the client id and secret do not match an environment."
INVALID_API_KEY = "Invalid API key: it matches no API key of"

# The reference test vectors (notificationapi-api.md, section 2).
VECTOR_CLIENT_BASIC = "Basic Y2xpZW50X2lkOmNsaWVudF9zZWNyZXQ="
VECTOR_USER_HASH_PYTHON = (
    "Basic Y2xpZW50X2lkOnVzZXJJZDpDV0hnM1puOGoxU3BUUlMyYVVNVUJCTk12SXBBanN1VVMyUUg1Wk9IOFNNPQ=="
)
VECTOR_USER_HASH_HMAC = (
    "Basic Y2xpZW50X2lkOnVzZXJJZDpabS9MaUNyaDB5S0RQRnJROXRiL1NBMVJzZGRLZlhxUHJpaWtRaE1rLzBrPQ=="
)


def basic(*parts: str) -> str:
    return "Basic " + base64.b64encode(":".join(parts).encode()).decode()


def authenticate(rf, header: str | None, **kwargs):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    return credentials_from_request(rf.get("/", **extra), **kwargs)


def refusal(rf, header: str | None, **kwargs) -> str:
    with pytest.raises(AuthenticationFailed) as excinfo:
        authenticate(rf, header, **kwargs)
    return excinfo.value.message


def get_environment(client, header: str | None):
    headers = {} if header is None else {"authorization": header}
    return client.get(ENVIRONMENT_URL, headers=headers)


def vector_environment():
    return EnvironmentFactory(client_id="client_id", client_secret="client_secret")


# Client id and secret (NotificationAPI's server SDKs).


def test_client_secret_basic_grants_every_scope(rf):
    environment = EnvironmentFactory(client_secret="the-right-secret")

    credentials = authenticate(rf, basic(environment.client_id, "the-right-secret"))

    assert credentials.environment == environment
    assert credentials.scopes == {"send", "read", "manage"}
    assert credentials.api_key is None
    assert credentials.user_id is None


def test_environment_endpoint_answers_who_the_client_secret_reaches(
    client, django_assert_max_num_queries
):
    environment = EnvironmentFactory(
        name="production", account__name="Acme", client_secret="the-right-secret"
    )

    with django_assert_max_num_queries(1):
        response = get_environment(client, basic(environment.client_id, "the-right-secret"))

    assert response.status_code == 200
    assert response.json() == {
        "clientId": environment.client_id,
        "environment": "production",
        "account": "Acme",
        "scopes": ["manage", "read", "send"],
        "apiKey": None,
    }


def test_wrong_client_secret_is_refused(rf, client):
    environment = EnvironmentFactory(client_secret="the-right-secret")
    header = basic(environment.client_id, "a-wrong-secret")

    assert INVALID in refusal(rf, header)
    response = get_environment(client, header)
    assert response.status_code == 401
    assert response.json() == {"message": refusal(rf, header)}
    assert "create_environment" in response.json()["message"]


def test_unknown_client_id_is_refused(rf, client):
    EnvironmentFactory(client_id="known0000000000000000000000", client_secret="s3cret")
    header = basic("unknown000000000000000000000", "s3cret")

    assert INVALID in refusal(rf, header)
    response = get_environment(client, header)
    assert response.status_code == 401
    assert INVALID in response.json()["message"]


def test_refusal_over_http_asks_for_basic_credentials(client):
    response = get_environment(client, None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


# Malformed headers: each refusal says what to send.

MALFORMED = [
    pytest.param(lambda env: None, "Missing Authorization header", id="missing"),
    pytest.param(lambda env: "Basic %%%not-base64%%%", "are not base64", id="not-base64"),
    pytest.param(
        lambda env: basic(env.client_id), "must be 'clientId:clientSecret'", id="no-colon"
    ),
    pytest.param(
        lambda env: basic(env.client_id, ""), "must be 'clientId:clientSecret'", id="empty-secret"
    ),
    pytest.param(
        lambda env: basic("", "secret"), "must be 'clientId:clientSecret'", id="empty-client-id"
    ),
    pytest.param(lambda env: "Basic", "Malformed Authorization header", id="basic-without-token"),
    pytest.param(lambda env: "Bearer", "Malformed Authorization header", id="empty-bearer"),
    pytest.param(
        lambda env: "Digest username=x, nonce=y",
        "Malformed Authorization header",
        id="unknown-scheme",
    ),
]


@pytest.mark.parametrize(("make_header", "says"), MALFORMED)
def test_malformed_header_is_refused_with_what_to_send(rf, make_header, says):
    environment = EnvironmentFactory()

    message = refusal(rf, make_header(environment))

    assert says in message
    assert WHAT_TO_SEND in message


@pytest.mark.parametrize(("make_header", "says"), MALFORMED)
def test_malformed_header_over_http_answers_401_with_message(client, make_header, says):
    environment = EnvironmentFactory()

    response = get_environment(client, make_header(environment))

    assert response.status_code == 401
    body = response.json()
    assert list(body) == ["message"]
    assert says in body["message"]
    assert WHAT_TO_SEND in body["message"]


# API keys.


def test_api_key_in_basic_with_client_id_grants_the_keys_scopes(rf):
    api_key = ApiKeyFactory(scopes=["read"])

    credentials = authenticate(rf, basic(api_key.environment.client_id, api_key.plain))

    assert credentials.environment == api_key.environment
    assert credentials.scopes == {"read"}
    assert credentials.api_key == api_key
    assert not credentials.has_scope("send")


def test_api_key_as_bearer_grants_the_keys_scopes(rf):
    api_key = ApiKeyFactory(scopes=["send"])

    credentials = authenticate(rf, f"Bearer {api_key.plain}")

    assert credentials.environment == api_key.environment
    assert credentials.scopes == {"send"}
    assert credentials.api_key == api_key


def test_environment_endpoint_shows_the_api_keys_scopes_and_prefix(
    client, django_assert_max_num_queries
):
    api_key = ApiKeyFactory(scopes=["read"])

    with django_assert_max_num_queries(2):
        bearer = get_environment(client, f"Bearer {api_key.plain}")
    in_basic = get_environment(client, basic(api_key.environment.client_id, api_key.plain))

    for response in (bearer, in_basic):
        assert response.status_code == 200
        body = response.json()
        assert body["clientId"] == api_key.environment.client_id
        assert body["scopes"] == ["read"]
        assert body["apiKey"] == api_key.prefix


def test_api_key_with_a_wrong_secret_part_is_refused(rf):
    api_key = ApiKeyFactory()
    tampered = api_key.plain[:-4] + ("AAAA" if not api_key.plain.endswith("AAAA") else "BBBB")

    assert INVALID_API_KEY in refusal(rf, f"Bearer {tampered}")
    assert INVALID_API_KEY in refusal(rf, basic(api_key.environment.client_id, tampered))


def test_unknown_bearer_token_is_refused(rf):
    ApiKeyFactory()

    assert INVALID_API_KEY in refusal(rf, "Bearer nlk_00000000_notakey")
    assert INVALID_API_KEY in refusal(rf, "Bearer not-a-key-at-all")


def test_api_key_of_another_environment_is_refused(rf, client):
    mine = EnvironmentFactory()
    theirs = ApiKeyFactory()
    header = basic(mine.client_id, theirs.plain)

    assert INVALID_API_KEY in refusal(rf, header)
    assert "another environment" in refusal(rf, f"Bearer {theirs.plain}", client_id=mine.client_id)
    response = get_environment(client, header)
    assert response.status_code == 401
    assert INVALID_API_KEY in response.json()["message"]


def test_revoked_api_key_is_refused_saying_it_was_revoked(rf, client):
    api_key = ApiKeyFactory()
    api_key_revoke(api_key=api_key)

    for header in (f"Bearer {api_key.plain}", basic(api_key.environment.client_id, api_key.plain)):
        message = refusal(rf, header)
        assert "revoked" in message
        assert api_key.prefix in message
        response = get_environment(client, header)
        assert response.status_code == 401
        assert "revoked" in response.json()["message"]
    api_key.refresh_from_db()
    assert api_key.last_used_at is None


# The client id in the URL path (NotificationAPI-compatible endpoints).


def test_client_id_in_path_matching_the_header_is_accepted(rf):
    environment = EnvironmentFactory(client_secret="s3cret")

    credentials = authenticate(
        rf, basic(environment.client_id, "s3cret"), client_id=environment.client_id
    )

    assert credentials.environment == environment


def test_client_id_in_path_not_matching_the_header_is_refused(rf):
    environment = EnvironmentFactory(client_secret="s3cret")
    other = EnvironmentFactory()

    message = refusal(rf, basic(environment.client_id, "s3cret"), client_id=other.client_id)

    assert message == ("The credentials are for another environment than the client id in the URL.")


def test_bearer_key_for_another_environment_than_the_path_is_refused(rf):
    api_key = ApiKeyFactory()
    other = EnvironmentFactory()

    assert refusal(rf, f"Bearer {api_key.plain}", client_id=other.client_id) == (
        "The credentials are for another environment than the client id in the URL."
    )
    assert (
        authenticate(rf, f"Bearer {api_key.plain}", client_id=api_key.environment.client_id).api_key
        == api_key
    )


# The user-hash form (NotificationAPI's front-end SDKs), with the reference test vectors.


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(VECTOR_USER_HASH_PYTHON, id="python-sdk-sha256"),
        pytest.param(VECTOR_USER_HASH_HMAC, id="hmac-sha256"),
    ],
)
def test_user_hash_vectors_authenticate_as_the_user(rf, header):
    environment = vector_environment()

    credentials = authenticate(rf, header, client_id="client_id", allow_user_hash=True)

    assert credentials.environment == environment
    assert credentials.user_id == "userId"
    # The hash sits in an end user's browser: it proves the user, and grants no API scope.
    assert credentials.scopes == frozenset()


def test_client_basic_vector_authenticates_as_client_where_user_hash_is_allowed(rf):
    environment = vector_environment()

    credentials = authenticate(rf, VECTOR_CLIENT_BASIC, client_id="client_id", allow_user_hash=True)

    assert credentials.environment == environment
    assert credentials.user_id is None
    assert credentials.scopes == {"send", "read", "manage"}


def test_client_basic_vector_authenticates_over_http(client):
    vector_environment()

    response = get_environment(client, VECTOR_CLIENT_BASIC)

    assert response.status_code == 200
    assert response.json()["clientId"] == "client_id"


def test_wrong_user_hash_is_refused(rf):
    vector_environment()
    wrong = base64.b64encode(
        hmac.new(b"another_secret", b"userId", hashlib.sha256).digest()
    ).decode()

    message = refusal(rf, basic("client_id", "userId", wrong), allow_user_hash=True)

    assert message.startswith("Invalid user hash")


def test_user_hash_for_another_user_id_is_refused(rf):
    vector_environment()
    # The Python-SDK hash of "userId", presented for a different user.
    given = "CWHg3Zn8j1SpTRS2aUMUBBNMvIpAjsuUS2QH5ZOH8SM="

    message = refusal(rf, basic("client_id", "someoneElse", given), allow_user_hash=True)

    assert message.startswith("Invalid user hash")


def test_user_id_containing_colons_runs_up_to_the_last_colon(rf):
    vector_environment()
    user_hash = base64.b64encode(
        hmac.new(b"client_secret", b"tenant:42:user", hashlib.sha256).digest()
    ).decode()

    credentials = authenticate(
        rf, basic("client_id", "tenant:42:user", user_hash), allow_user_hash=True
    )

    assert credentials.user_id == "tenant:42:user"


def test_user_hash_is_refused_where_not_allowed(rf, client):
    vector_environment()

    assert INVALID in refusal(rf, VECTOR_USER_HASH_HMAC)
    response = get_environment(client, VECTOR_USER_HASH_HMAC)
    assert response.status_code == 401


def test_user_hash_with_client_id_not_matching_the_path_is_refused(rf):
    vector_environment()
    other = EnvironmentFactory()

    message = refusal(rf, VECTOR_USER_HASH_HMAC, client_id=other.client_id, allow_user_hash=True)

    assert "another environment than the client id in the URL" in message


def test_user_hash_with_an_empty_user_id_is_malformed(rf):
    vector_environment()
    header = "Basic " + base64.b64encode(b"client_id::abc=").decode()

    message = refusal(rf, header, allow_user_hash=True)

    assert "non-empty userId" in message


# last_used_at


def test_last_used_at_is_set_on_first_use_and_rewritten_at_most_once_a_minute(rf):
    api_key = ApiKeyFactory()
    assert api_key.last_used_at is None
    first_use = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

    with time_machine.travel(first_use, tick=False):
        authenticate(rf, f"Bearer {api_key.plain}")
    api_key.refresh_from_db()
    assert api_key.last_used_at == first_use

    with time_machine.travel(first_use + timedelta(seconds=59), tick=False):
        authenticate(rf, f"Bearer {api_key.plain}")
    api_key.refresh_from_db()
    assert api_key.last_used_at == first_use

    later = first_use + timedelta(minutes=1, seconds=1)
    with time_machine.travel(later, tick=False):
        authenticate(rf, basic(api_key.environment.client_id, api_key.plain))
    api_key.refresh_from_db()
    assert api_key.last_used_at == later


def test_refused_api_key_does_not_record_use(rf):
    api_key = ApiKeyFactory()
    other = EnvironmentFactory()

    refusal(rf, basic(other.client_id, api_key.plain))

    api_key.refresh_from_db()
    assert api_key.last_used_at is None
