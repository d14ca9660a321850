"""The Celery app. Settings come from Django settings prefixed CELERY_."""

import logging
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from celery.worker.consumer import Consumer as CeleryConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("notification_log")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logger = logging.getLogger("celery.worker.consumer")


class Consumer(CeleryConsumer):
    """The worker's consumer (settings.CELERY_WORKER_CONSUMER), reconnecting whatever the
    old connection's close raises."""

    def on_connection_error_after_connected(self, exc):
        # WORKAROUND: celery 5.7 with kombu's Redis transport: when Redis goes away while a
        # task is in flight (acks_late), the handler first collects the connection (its
        # transport forgets the connection) and then closes it; the close restores the unacked
        # message through that transport and raises AttributeError ('NoneType' object has no
        # attribute 'hostname'), which celery treats as unrecoverable: the worker exits and
        # nothing is processed until something restarts it. Everything the handler does
        # before that close has been done (self.connection is None), so the consumer goes on
        # to reconnect as it does after any connection loss. The message stays in Redis's
        # unacked set and is delivered again after the visibility timeout; our tasks are
        # idempotent, and the sweeper finds their rows sooner.
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as error:
            logger.warning(
                "Ignored %r while closing the lost broker connection; reconnecting.", error
            )


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
