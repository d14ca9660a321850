import pytest

from config.celery import app as celery_app
from tests.stream.receiver import Receiver


@pytest.fixture
def celery_eager():
    """Run enqueued tasks in-process on commit, through the same calls a worker makes."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running
