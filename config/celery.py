"""The Celery app. Settings come from Django settings prefixed CELERY_."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from kombu.transport import redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("notification_log")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class RedisTransport(redis.Transport):
    """kombu's Redis transport (settings.CELERY_BROKER_TRANSPORT), keeping its connection's
    parameters after the worker has given that connection up."""

    # WORKAROUND: celery 5.7 / kombu 5.7. When Redis goes away, the worker's consumer
    # collects the lost connection, and kombu clears the transport's `client` to break a
    # reference cycle. A task that was running then still acknowledges its message through
    # that transport's channel once it ends, and so does the close that restores unacked
    # messages; both read the parameters from `client` and raise AttributeError ('NoneType'
    # object has no attribute 'hostname'). celery treats that as unrecoverable: the worker
    # exits (or, caught, its consumer stops consuming), and nothing is processed until
    # something restarts it. Keeping the parameters, the late acknowledgement reaches Redis
    # again once it is back (or fails with a connection error, which celery logs and goes
    # past; the message is delivered again after the visibility timeout and our tasks are
    # idempotent).
    @property
    def client(self):
        return self._client

    @client.setter
    def client(self, connection) -> None:
        if connection is not None or getattr(self, "_client", None) is None:
            self._client = connection


@task_prerun.connect
@task_postrun.connect
def _database_connections_tidy(*, task=None, **kwargs) -> None:
    # Around each task what Django does around each request: close a connection that is
    # broken or older than DATABASE_CONN_MAX_AGE, keep the others (settings.CELERY_DB_REUSE_MAX).
    # Not for an eager task: it runs inside its caller's (a test's) transaction.
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
