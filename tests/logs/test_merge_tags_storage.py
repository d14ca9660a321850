"""A notification's merge tags are stored once: NULL in the merge_tags column when they are
the request's own (every send's are), read from the request; their own value when they
differ. Every reader goes through Notification.merge_tags."""

import json
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection

from logs.models import Notification, request_merge_tags
from logs.services import notification_create
from tests.factories import EnvironmentFactory

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TAGS = {"orderId": "A-1042", "items": [{"sku": "KP-1", "qty": 2}], "gift": True, "total": 9.5}


def _create(*, merge_tags, request):
    return notification_create(
        environment_id=EnvironmentFactory().id,
        notification_type="order_tracking",
        user_id="usr_1",
        merge_tags=merge_tags,
        request=request,
        created_at=T0,
    )


def _column(notification):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT merge_tags::text FROM logs_notification WHERE id = %s", [notification.id]
        )
        (text,) = cursor.fetchone()
    return (True, None) if text is None else (False, json.loads(text))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "request_body",
    [
        {"notificationId": "order_tracking", "user": {"id": "usr_1"}, "mergeTags": TAGS},
        # The newer SDKs' spelling.
        {"type": "order_tracking", "to": {"id": "usr_1"}, "parameters": TAGS},
        # Both spellings, the same value (the parser accepts it).
        {"notificationId": "order_tracking", "mergeTags": TAGS, "parameters": TAGS},
    ],
)
def test_merge_tags_the_request_holds_are_not_stored_twice(request_body):
    notification = _create(merge_tags=dict(TAGS), request=request_body)
    assert _column(notification) == (True, None)
    read = Notification.objects.get(id=notification.id)
    assert read.merge_tags == TAGS
    # Read with the request deferred too (as event_record's instances are).
    deferred = Notification.objects.defer("request", "stored_merge_tags").get(id=notification.id)
    assert deferred.merge_tags == TAGS


@pytest.mark.django_db
def test_no_merge_tags_and_a_request_without_them_store_nothing():
    notification = _create(merge_tags=None, request={"notificationId": "order_tracking"})
    assert _column(notification) == (True, None)
    assert Notification.objects.get(id=notification.id).merge_tags == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("merge_tags", "request_body"),
    [
        # No merge tags in the request (a caller of notification_create's own).
        ({"orderId": "A-1"}, {"notificationId": "order_tracking"}),
        ({"orderId": "A-1"}, {"mergeTags": {"orderId": "A-2"}}),
        # Equal to Python, not in JSON: true is not 1, 1 is not 1.0.
        ({"gift": True}, {"mergeTags": {"gift": 1}}),
        ({"qty": [1]}, {"mergeTags": {"qty": [1.0]}}),
        ({}, {"mergeTags": {"orderId": "A-1"}}),
        # Not an object: the request gives none.
        ({"a": 1}, {"mergeTags": ["a", 1]}),
    ],
)
def test_merge_tags_unlike_the_requests_are_stored_and_read_back(merge_tags, request_body):
    notification = _create(merge_tags=merge_tags, request=request_body)
    assert _column(notification) == (False, merge_tags)
    read = Notification.objects.get(id=notification.id)
    assert read.merge_tags == merge_tags
    assert [type(value) for value in read.merge_tags.values()] == [
        type(value) for value in merge_tags.values()
    ]


@pytest.mark.django_db
def test_a_row_written_before_keeps_its_own_and_empty_ones_stay_empty():
    """Rows from before logs 0021 hold their merge tags (the same as the request's): read as
    before. A stored {} is {}, whatever the request says (content retention writes it)."""
    notification = _create(merge_tags=TAGS, request={"mergeTags": TAGS})
    with connection.cursor() as cursor:
        cursor.execute(
            'UPDATE logs_notification SET merge_tags = \'{"orderId": "old"}\' WHERE id = %s',
            [notification.id],
        )
    assert Notification.objects.get(id=notification.id).merge_tags == {"orderId": "old"}
    Notification.objects.filter(id=notification.id).update(stored_merge_tags={})
    assert Notification.objects.get(id=notification.id).merge_tags == {}


def test_setting_merge_tags_stores_them():
    notification = Notification(id=uuid.uuid4(), request={"mergeTags": TAGS}, merge_tags=TAGS)
    assert notification.stored_merge_tags == TAGS
    notification.merge_tags = {"orderId": "B"}
    assert notification.stored_merge_tags == notification.merge_tags == {"orderId": "B"}
    assert Notification(request={"mergeTags": TAGS}).merge_tags == TAGS


@pytest.mark.parametrize(
    ("request_body", "merge_tags"),
    [
        ({"mergeTags": {"a": 1}}, {"a": 1}),
        ({"parameters": {"a": 1}}, {"a": 1}),
        ({"mergeTags": {"a": 1}, "parameters": {"b": 2}}, {"a": 1}),
        ({"mergeTags": None, "parameters": {"b": 2}}, {"b": 2}),
        ({"mergeTags": "a", "parameters": {"b": 2}}, {}),
        ({"mergeTags": [1]}, {}),
        ({"notificationId": "x"}, {}),
        ({}, {}),
        (None, {}),
        ([{"mergeTags": {"a": 1}}], {}),
    ],
)
def test_request_merge_tags_reads_stored_requests_as_it_always_did(request_body, merge_tags):
    """Rows written with NULL merge tags are read through this rule: it must not change."""
    assert request_merge_tags(request_body) == merge_tags
