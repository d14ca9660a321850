"""The project's own Celery tasks: the workers' heartbeat (config/heartbeat.py)."""

from celery import shared_task

from config.heartbeat import QUEUES, heartbeat_write


@shared_task(name="config.tasks.worker_heartbeat_task", ignore_result=True)
def worker_heartbeat_task(queue: str) -> None:
    """Beat sends one to each queue every HEARTBEAT_INTERVAL_SECONDS; the worker that runs it
    says that queue is being worked. Never retried: the next one is already on its way."""
    if queue in QUEUES:
        heartbeat_write(queue)
