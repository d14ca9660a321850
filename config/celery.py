"""The Celery app. Settings come from Django settings prefixed CELERY_."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("notification_log")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
