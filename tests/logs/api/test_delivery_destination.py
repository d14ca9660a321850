"""A delivery sent to its notification's own address (every one dispatch sends) does not
store it again: the API detail reads it from the notification (Delivery.destination_of)."""

import pytest

from tests.helpers import deliveries_recorded
from tests.logs.api.conftest import make_log

pytestmark = pytest.mark.django_db


def test_the_detail_says_where_each_delivery_went_stored_or_not(api, environment):
    notification = make_log(
        environment,
        user_id="usr_ada",
        email="ada@example.com",
        number="+14155550100",
        outcomes={"email": ("delivered", ""), "sms": ("delivered", "")},
    )
    stored = deliveries_recorded(
        notification,
        {
            "in_app": {"provider": "in_app", "destination": ""},
            "call": {"provider": "twilio", "destination": "+14155550199"},
        },
    )
    assert stored == {"email": "", "sms": "", "in_app": "", "call": "+14155550199"}
    detail = api.get(f"/api/v1/logs/{notification.id}").json()
    assert {d["channel"]: d["destination"] for d in detail["deliveries"]} == {
        "email": "ada@example.com",
        "sms": "+14155550100",
        "in_app": "usr_ada",
        "call": "+14155550199",
    }


def test_a_delivery_never_sent_has_no_destination(api, environment):
    notification = make_log(environment, email="ada@example.com")
    assert deliveries_recorded(notification, {"email": {}}) == {"email": ""}
    detail = api.get(f"/api/v1/logs/{notification.id}").json()
    assert [d["destination"] for d in detail["deliveries"]] == [""]
