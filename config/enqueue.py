"""How a service enqueues a task: by the task's name, never by importing its module.

Tasks call services, so a service that imported its app's tasks module would close a cycle
(tasks -> services -> tasks). `task(name)` returns the registered Celery task instead: the
same object the import would give, so `.delay`, `.apply_async`, eager mode (no broker), queue
routing (settings.CELERY_TASK_ROUTES, by name) and the task's own options are unchanged.

    from config.enqueue import task

    task("stream.tasks.stream_subscription_drain_task").apply_async(args=[pk], retry=False)

The name is the one Celery registers: `<module>.<function>` unless the task names itself
(settings.CELERY_TASK_ROUTES, CELERY_TASK_ANNOTATIONS and CELERY_BEAT_SCHEDULE use the same).
"""

from celery import Task

from config.celery import app


def task(name: str) -> Task:
    """The registered Celery task called `name`. A web process has imported no tasks module
    until its first enqueue: on a miss the apps' tasks modules are imported (Celery's
    autodiscovery, as a worker does at start), then the name must be known."""
    try:
        return app.tasks[name]
    except KeyError:
        app.autodiscover_tasks(force=True)
    try:
        return app.tasks[name]
    except KeyError:
        raise LookupError(
            f"No Celery task named {name!r}: a task's name is '<app>.tasks.<function>' "
            "unless its @shared_task(name=...) says otherwise."
        ) from None
