import pytest
from django.test import override_settings

from config.celery import app as celery_app
from tests.webhooks.providers import WEBHOOK_SETTINGS


@pytest.fixture
def webhook_settings():
    """Known provider secrets (the values the test payloads are signed with)."""
    with override_settings(**WEBHOOK_SETTINGS):
        yield


@pytest.fixture
def celery_eager():
    """Run enqueued tasks in-process, as `make run` does without REDIS_URL: the on-commit
    enqueue of a stored callback then processes it through the same calls a worker makes."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
