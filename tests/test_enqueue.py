"""config/enqueue.py: a service enqueues a task by its name, and gets the task its module
registers, however many threads of a fresh process ask at once (a web process's first
callbacks arrive together, before any tasks module is imported)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from config.enqueue import task

ROOT = Path(__file__).resolve().parent.parent

_FRESH_PROCESS = """
import sys, threading
import django
django.setup()
assert "webhooks.tasks" not in sys.modules, "imported before the first enqueue"
from config.enqueue import task
barrier = threading.Barrier(16)
found, errors = [], []
def ask():
    barrier.wait()
    try:
        found.append(task("webhooks.tasks.inbox_process_batch_task"))
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=ask) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert not errors, errors
assert len({id(t) for t in found}) == 1 and len(found) == 16, found
print(found[0].name)
"""


def test_sixteen_threads_of_a_fresh_process_get_the_same_registered_task():
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "webhooks.tasks.inbox_process_batch_task"


def test_it_is_the_task_the_module_registers_and_routes_by_name():
    from stream.tasks import stream_subscription_drain_task

    drain = task("stream.tasks.stream_subscription_drain_task")
    assert drain is stream_subscription_drain_task._get_current_object()
    route = drain.app.amqp.router.route({}, drain.name)
    assert route["queue"].name == settings.CELERY_TASK_ROUTES[drain.name]["queue"] == "outbound"


def test_an_unknown_name_says_what_a_task_name_is():
    with pytest.raises(LookupError, match=r"No Celery task named 'stream.tasks.nothing'"):
        task("stream.tasks.nothing")
    with pytest.raises(LookupError, match=r"'<app>.tasks.<function>'"):
        task("nowhere.tasks.nothing")
