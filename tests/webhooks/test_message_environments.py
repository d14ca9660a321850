"""The callbacks' message id -> environment lookup (webhooks/message_environments.py): written
by a Sent on Citus only (plain PostgreSQL pays no write for it), and purged with the log."""

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from tests.factories import EnvironmentFactory
from tests.webhooks.providers import sent_delivery
from webhooks.message_environments import message_environments, message_environments_purge
from webhooks.models import MessageEnvironment

pytestmark = pytest.mark.django_db


def test_a_sent_writes_its_message_ids_environment_on_citus_only():
    environment = EnvironmentFactory()
    message_id = f"msg-{uuid.uuid4()}"

    sent_delivery(environment=environment, channel="email", message_id=message_id)

    expected = {message_id: [environment.id]} if settings.DATABASE_CITUS else {}
    assert message_environments([message_id]) == expected


def test_the_purge_deletes_the_rows_of_days_the_retention_dropped_in_batches():
    now = timezone.now()
    retention_days = 30
    ages = {"old-1": 40, "old-2": 32, "old-3": 31.5, "kept-1": 30.5, "kept-2": 1}
    MessageEnvironment.objects.bulk_create(
        MessageEnvironment(
            provider_message_id=message_id,
            environment_id=7,
            notification_created_at=now - timedelta(days=age),
        )
        for message_id, age in ages.items()
    )

    deleted = message_environments_purge(retention_days=retention_days, now=now, batch=2)

    assert deleted == 3
    # A row goes a day after the cutoff: its day's partition (which ended before the
    # cutoff) was dropped by then; the day holding the cutoff is still kept.
    assert sorted(MessageEnvironment.objects.values_list("provider_message_id", flat=True)) == [
        "kept-1",
        "kept-2",
    ]
    assert message_environments_purge(retention_days=retention_days, now=now) == 0


def test_the_nightly_retention_task_purges_them_with_the_log(settings):
    """logs' retention task runs the purge webhooks registers in its AppConfig.ready (logs
    imports nothing of webhooks): the rows of dropped days go the same night."""
    from logs.tasks import retention_purge_task

    settings.LOG_RETENTION_DAYS = 7
    now = timezone.now()
    MessageEnvironment.objects.bulk_create(
        MessageEnvironment(
            provider_message_id=message_id,
            environment_id=7,
            notification_created_at=now - timedelta(days=age),
        )
        for message_id, age in {"old": 10, "kept": 1}.items()
    )

    retention_purge_task.apply()

    assert list(MessageEnvironment.objects.values_list("provider_message_id", flat=True)) == [
        "kept"
    ]


def test_rows_loaded_around_the_pipeline_get_their_message_ids_environment_on_citus():
    """The seed's COPY writes deliveries with message ids but no Sent: on Citus a callback
    that names no environment finds theirs all the same (log_rows_loaded)."""
    from demo.loader import seed_logs
    from logs.models import Delivery

    summary = seed_logs(notifications=30, days=1, environments=1, seed=7)
    [environment_id] = summary.environment_ids
    message_ids = list(
        Delivery.objects.filter(environment_id=environment_id)
        .exclude(provider_message_id="")
        .values_list("provider_message_id", flat=True)
    )

    assert message_ids
    found = message_environments(message_ids)
    if settings.DATABASE_CITUS:
        assert found == {message_id: [environment_id] for message_id in message_ids}
    else:
        assert found == {}
