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

import importlib
import threading

from celery import Task

from config.celery import app

# One import at a time: a thread asking while another imports the tasks module must wait for
# the task to be registered, not find the module half-run (a web process's first callbacks
# arrive together).
_import_lock = threading.Lock()


def task(name: str) -> Task:
    """The registered Celery task called `name`. A web process has imported no tasks module
    until its first enqueue: on a miss the task's module is imported (what the worker's
    autodiscovery does at its start), then the name must be known."""
    try:
        return app.tasks[name]
    except KeyError:
        pass
    with _import_lock:
        if name not in app.tasks:
            module = name.rpartition(".")[0]
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name is None or not (module + ".").startswith(exc.name + "."):
                    raise  # the module exists and one of its own imports is missing
    try:
        return app.tasks[name]
    except KeyError:
        raise LookupError(
            f"No Celery task named {name!r}: a task's name is '<app>.tasks.<function>' "
            "unless its @shared_task(name=...) says otherwise."
        ) from None
