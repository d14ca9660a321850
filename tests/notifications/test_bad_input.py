"""No input gives a 500: hostile JSON, odd URL ids and random bodies are refused with a 4xx
that says what to fix, and nothing is written."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logs.models import Notification

pytestmark = pytest.mark.django_db

SEND = {"notificationId": "order_tracking", "user": {"id": "u1", "email": "a@example.com"}}


def post(client, url, raw: str, headers):
    return client.post(url, data=raw, content_type="application/json", headers=headers)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            '{"notificationId": "order_tracking", "user": {"id": "u"}, "mergeTags": {"x": NaN}}',
            "NaN is not a JSON value",
        ),
        ('{"notificationId": "order_tracking", "user": {"id": "u\\u0000"}}', "NUL character"),
        (
            '{"notificationId": "order_tracking", "user": {"id": "u"}, "mergeTags": '
            '{"a\\u0000": 1}}',
            "NUL character",
        ),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("\xff\xfe", "not valid JSON"),
    ],
)
def test_hostile_json_answers_400(client, environment, auth, order_tracking, raw, message):
    response = post(client, f"/{environment.client_id}/sender", raw, auth)
    assert response.status_code == 400, response.content
    assert message in response.json()["message"]
    assert not Notification.objects.exists()


def test_over_long_ids_in_the_url_answer_400(client, environment, auth, order_tracking):
    long_id = "u" * 256
    urls = [
        f"/{environment.client_id}/user_preferences/{long_id}",
        f"/{environment.client_id}/notifications/{'n' * 101}/subNotifications/s",
        f"/{environment.client_id}/notifications/order_tracking/subNotifications/{long_id}",
    ]
    for url in urls:
        response = client.post(url, data="[]", content_type="application/json", headers=auth)
        if response.status_code == 405:
            response = client.put(url, data="{}", content_type="application/json", headers=auth)
        assert response.status_code == 400, (url, response.content)
        assert "in the URL must be 1 to" in response.json()["message"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
send_like = st.fixed_dictionaries(
    {},
    optional={
        "notificationId": json_values | st.just("order_tracking"),
        "user": json_values
        | st.fixed_dictionaries(
            {"id": json_values | st.text(min_size=1)},
            optional={"email": json_values, "number": json_values},
        ),
        "mergeTags": json_values,
        "forceChannels": json_values | st.lists(st.sampled_from(["EMAIL", "SMS", "X"])),
        "schedule": json_values,
        "replace": json_values,
        "options": json_values,
        "email": json_values,
        "templateId": json_values,
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=send_like | json_values)
def test_random_bodies_never_answer_500(client, environment, auth, order_tracking, body):
    response = post(client, f"/{environment.client_id}/sender", json.dumps(body), auth)
    assert response.status_code in (200, 202, 400, 404), (body, response.content)
    if response.status_code >= 400:
        assert response.json()["message"]
