"""Dispatch is enqueued in batches (config/batching.py): a burst of sends leaves a server
process as a few Celery messages on the real Redis broker, each naming its notifications,
every notification exactly once. (With the broker down they are left to the outbox sweeper:
tests/notifications/test_worker.py stops Redis mid-burst.)"""

import uuid

from notifications.services.sends import dispatch_enqueue
from tests.conftest import queued_messages


def test_a_burst_of_sends_is_enqueued_as_a_few_messages_naming_each_once(celery_broker):
    ids = [uuid.uuid4() for _ in range(25)]
    for notification_id in ids:
        dispatch_enqueue(notification_id)
    messages = queued_messages(celery_broker, expected=len(ids))
    assert {task for task, _ in messages} == {
        "notifications.tasks.notification_dispatch_batch_task"
    }
    assert sorted(i for _, named in messages for i in named) == sorted(str(i) for i in ids)
    # Ten a message at most, and a burst fills them.
    assert len(messages) <= 4, len(messages)
