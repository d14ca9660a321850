"""The refusals a caller reads say exactly what applies: the body-size limit actually
enforced, what a bad API key or client secret means and where a new one is made (never a
page that cannot show it), and the valid values of a filter."""

import json

import pytest
from rest_framework.test import APIClient

from logs.models import Notification
from tests.factories import ApiKeyFactory
from tests.notifications.conftest import basic

pytestmark = pytest.mark.django_db

SEND = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "alice@example.com"},
}


def post_send(client, environment, body, headers):
    return client.post(
        f"/{environment.client_id}/sender",
        data=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def test_900_kb_of_merge_tags_is_accepted(client, environment, auth, order_tracking):
    body = {**SEND, "mergeTags": {"first_name": "Alice", "order_id": "A-1", "blob": "x" * 900_000}}

    response = post_send(client, environment, body, auth)

    assert response.status_code == 200, response.content[:300]
    assert Notification.objects.get(id=response.json()["trackingId"]).merge_tags["blob"]


def test_a_body_over_the_limit_is_refused_naming_the_limit_that_applies(
    client, environment, auth, order_tracking
):
    body = {**SEND, "mergeTags": {"blob": "x" * 1_100_000}}

    response = post_send(client, environment, body, auth)

    assert response.status_code == 400
    assert response.json() == {
        "message": "The body is over 1,048,576 bytes (1 MB), the most one request may send: "
        "mergeTags, inline content and every other field count together. Send less."
    }
    assert not Notification.objects.exists()


@pytest.mark.parametrize("token", ["nlk_00000000_notakey", "not-an-api-key"])
def test_a_bad_bearer_key_is_refused_as_an_api_key(client, environment, token):
    ApiKeyFactory(environment=environment)

    response = post_send(client, environment, SEND, {"authorization": f"Bearer {token}"})

    assert response.status_code == 401
    message = response.json()["message"]
    assert message.startswith("Invalid API key: it matches no API key of this install.")
    assert "make a new one" in message and "API keys > Add" in message
    assert "client id" not in message and "secret" not in message


def test_a_bad_api_key_in_basic_names_the_client_id_it_was_sent_for(client, environment):
    response = post_send(
        client, environment, SEND, {"authorization": basic(environment.client_id, "nlk_ab_cd")}
    )

    assert response.status_code == 401
    assert response.json()["message"].startswith(
        f"Invalid API key: it matches no API key of client id {environment.client_id}."
    )


def test_a_wrong_client_secret_points_where_a_new_secret_is_made(client, environment):
    response = post_send(
        client, environment, SEND, {"authorization": basic(environment.client_id, "wrong")}
    )

    assert response.status_code == 401
    message = response.json()["message"]
    assert message.startswith(
        "Invalid credentials: the client id and secret do not match an environment."
    )
    # The Environments page lists client ids but never shows a secret: the way to a usable
    # secret is to rotate it.
    assert "cannot be shown again" in message
    assert "'Rotate client secret'" in message
    assert "Copy them" not in message


def test_a_wrong_client_secret_on_the_logs_api_says_the_same(environment):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(environment.client_id, "wrong"))

    response = client.get("/api/v1/logs")

    assert response.status_code == 401
    assert "'Rotate client secret'" in response.json()["message"]


def test_an_unknown_status_lists_the_valid_values(environment, auth):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=auth["authorization"])

    response = client.get("/api/v1/logs", {"status": "sucess"})

    assert response.status_code == 400
    assert response.json()["message"] == (
        'status[0]: "sucess" is not valid: use one of received, success, failure.'
    )


def test_an_unknown_status_filter_of_query_logs_lists_the_valid_values(environment, auth):
    response = APIClient().post(
        f"/{environment.client_id}/logs/query",
        {"statusFilter": ["DONE"]},
        format="json",
        HTTP_AUTHORIZATION=auth["authorization"],
    )

    assert response.status_code == 400
    assert response.json()["message"] == (
        'statusFilter[0]: "DONE" is not valid: use one of received, success, failure.'
    )


def test_a_logs_query_body_over_django_s_limit_names_that_limit(environment, auth, settings):
    too_long = "y" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps({"requestFilter": [f"request.x = {too_long}"]})

    response = APIClient().post(
        f"/{environment.client_id}/logs/query",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=auth["authorization"],
    )

    assert response.status_code == 400
    assert response.json() == {
        "message": f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes, "
        "the most this API reads: send a smaller one."
    }


def test_a_nul_in_a_preferences_query_parameter_is_a_400_not_a_500(client, environment, auth):
    response = client.delete(
        f"/{environment.client_id}/users/usr_1/preferences?notificationId=a%00b", headers=auth
    )

    assert response.status_code == 400
    assert response.json() == {
        "message": "notificationId contains a NUL character (%00): remove it."
    }
