"""The official NotificationAPI Python SDK's query_logs against this server, over HTTP."""

import asyncio

import notificationapi_python_server_sdk.notificationapi as notificationapi
import pytest

from tests.logs.api.conftest import SECRET, make_log


@pytest.fixture
def sdk(live_server, environment):
    notificationapi.init(environment.client_id, SECRET, base_url=live_server.url)

    def query_logs(params: dict) -> list[str]:
        response = asyncio.run(notificationapi.query_logs(params))
        assert response.status_code == 200, response.text
        return [log["trackingId"] for log in response.json()["logs"]]

    return query_logs


@pytest.fixture
def logs(environment, other_environment):
    made = [
        make_log(environment, minutes=1, type="welcome", user_id="u-1",
                 merge_tags={"order": {"items": [{"sku": "KP-1", "qty": 2}], "total": 9.5},
                             "item": "Krabby Patty Burger"},
                 outcomes={"email": ("delivered", "")}),
        make_log(environment, minutes=2, type="order_tracking", user_id="u-2",
                 email="sam@gmail.com",
                 merge_tags={"order": {"items": [{"sku": "KF-7", "qty": 1}], "total": 3},
                             "item": "Kelp Fries"},
                 outcomes={"email": ("failed", "bounce"), "sms": ("delivered", "")}),
        make_log(environment, minutes=3, type="order_tracking", user_id="u-1",
                 merge_tags={"order": {"items": [{"sku": "KP-1", "qty": 5}], "total": 25},
                             "item": "Krabby Patty Burger", "gift": True},
                 outcomes={"call": ("failed", "cannot_reach")}),
        make_log(environment, minutes=4, type="welcome", user_id="u-3"),
    ]  # fmt: skip
    # Another tenant's notification matching every filter above: never returned.
    make_log(other_environment, minutes=2, type="order_tracking", user_id="u-1",
             merge_tags={"item": "Krabby Patty Burger"},
             outcomes={"email": ("failed", "bounce")})  # fmt: skip
    return made


def ms(moment) -> int:
    return int(moment.timestamp() * 1000)


@pytest.mark.django_db(transaction=True)
def test_query_logs_returns_exactly_what_each_filter_selects(sdk, logs, environment):
    def expect(*positions):
        return [str(logs[p].id) for p in positions]

    assert sdk({}) == expect(3, 2, 1, 0)
    # Each filter alone.
    assert sdk({"notificationFilter": ["order_tracking"]}) == expect(2, 1)
    assert sdk({"userFilter": ["u-1"]}) == expect(2, 0)
    assert sdk({"channelFilter": ["EMAIL"]}) == expect(1, 0)
    assert sdk({"statusFilter": ["FAILURE"]}) == expect(2, 1)
    assert sdk({"statusFilter": ["success"]}) == expect(0)
    assert sdk({"statusFilter": ["Received", "SUCCESS"]}) == expect(3, 0)
    assert sdk({"trackingIds": [str(logs[1].id), str(logs[3].id)]}) == expect(3, 1)
    assert sdk({"envIdFilter": [environment.client_id]}) == expect(3, 2, 1, 0)
    assert sdk({"envIdFilter": ["someoneelse0000000000000000"]}) == []
    window = {"startTime": ms(logs[1].created_at), "endTime": ms(logs[2].created_at)}
    assert sdk({"dateRangeFilter": window}) == expect(2, 1)
    # requestFilter over nested merge tags, each shape of the grammar.
    assert sdk({"requestFilter": ['request.mergeTags.item="Krabby Patty Burger"']}) == expect(2, 0)
    assert sdk({"requestFilter": ["request.mergeTags.order.items[0].sku = 'KF-7'"]}) == expect(1)
    assert sdk({"requestFilter": ["$.request.mergeTags.order.items[0].qty >= 2"]}) == expect(2, 0)
    assert sdk({"requestFilter": ["request.mergeTags.order.total < 5"]}) == expect(1)
    assert sdk({"requestFilter": ["request.mergeTags.item = 'K*'"]}) == expect(2, 1, 0)
    assert sdk({"requestFilter": ["request.mergeTags.gift IS TRUE"]}) == expect(2)
    assert sdk({"requestFilter": ["request.mergeTags.order NOT EXISTS"]}) == expect(3)
    assert sdk({"requestFilter": ['request.user.email = "*@gmail.com"']}) == expect(1)
    # Combined.
    assert sdk({"userFilter": ["u-1"], "notificationFilter": ["order_tracking"]}) == expect(2)
    assert sdk({"channelFilter": ["EMAIL", "CALL"], "statusFilter": ["FAILURE"]}) == expect(2, 1)
    assert sdk(
        {
            "userFilter": ["u-1", "u-2"],
            "statusFilter": ["failure"],
            "dateRangeFilter": {"startTime": ms(logs[0].created_at)},
            "requestFilter": [
                "request.mergeTags.order.items[0].sku = 'KP-1' "
                "&& request.mergeTags.order.total > 20"
            ],
        }
    ) == expect(2)
    assert sdk(
        {
            "requestFilter": [
                "request.mergeTags.item = 'Kelp Fries'",
                "request.mergeTags.gift IS TRUE",
            ]
        }
    ) == expect(2, 1)


@pytest.mark.django_db(transaction=True)
def test_query_logs_bad_input_answers_400_with_a_message(live_server, environment, logs):
    notificationapi.init(environment.client_id, SECRET, base_url=live_server.url)
    response = asyncio.run(notificationapi.query_logs({"customFilter": "fields @message"}))
    assert response.status_code == 400
    assert "requestFilter" in response.json()["message"]
    notificationapi.init(environment.client_id, "wrong-secret", base_url=live_server.url)
    assert asyncio.run(notificationapi.query_logs({})).status_code == 401
