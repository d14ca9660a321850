import pytest

from config.celery import app as celery_app
from tests.alerts.conftest import slack  # noqa: F401  (a Slack incoming-webhook stand-in)


@pytest.fixture
def eager():
    """Tasks run in-process on commit, through the same calls a worker makes."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
