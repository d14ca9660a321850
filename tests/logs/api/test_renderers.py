"""The fast renderers of the list and logs/query answer exactly what the serializers that
document them (the OpenAPI schema) would."""

import pytest

from logs.api.search import page_deliveries, page_events
from logs.api.serializers import LogRecordSerializer, LogSerializer, log_record, log_summary
from tests.logs.api.conftest import make_log

pytestmark = pytest.mark.django_db


def test_fast_renderers_match_the_documented_serializers(environment):
    notifications = [
        make_log(environment, minutes=1, outcomes={"email": ("failed", "bounce")}),
        make_log(environment, minutes=2, outcomes={"call": ("delivered", "no_answer"),
                                                   "sms": ("sent", "")}),
        make_log(environment, minutes=3, merge_tags={"nested": {"a": [1, None, "x"]}}),
    ]  # fmt: skip
    deliveries = page_deliveries(notifications=notifications)
    events = page_events(notifications=notifications)
    for notification in notifications:
        notification.api_deliveries = deliveries.get(notification.id, [])
        notification.api_timeline = events.get(notification.id, [])
        assert log_summary(notification) == LogSerializer(notification).data
        documented = LogRecordSerializer(notification, context={"client_id": "c1"}).data
        assert log_record(notification, client_id="c1") == documented
