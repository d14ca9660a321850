"""The outbound event stream (stream/): retries, deadlines, sweeps and drains."""

from celery.schedules import crontab

from config.settings.environment import ImproperlyConfigured, declare, env
from config.settings.worker import CELERY_BEAT_SCHEDULE, CELERY_TASK_ANNOTATIONS

# Outbound event stream (stream/): signed POSTs of recorded events to subscribers' endpoints.
# STREAM_RETRY_WINDOW_SECONDS: how long a message is retried before it is given up, and how
# long a subscriber may fail every delivery before it is disabled (a day).
STREAM_RETRY_WINDOW_SECONDS = env.float("STREAM_RETRY_WINDOW_SECONDS", default=86400.0)
# STREAM_RETRY_BACKOFF_SECONDS: the first wait after a failed delivery, doubled after each
# attempt up to STREAM_RETRY_MAX_BACKOFF_SECONDS.
STREAM_RETRY_BACKOFF_SECONDS = env.float("STREAM_RETRY_BACKOFF_SECONDS", default=10.0)
STREAM_RETRY_MAX_BACKOFF_SECONDS = env.float("STREAM_RETRY_MAX_BACKOFF_SECONDS", default=3600.0)
# STREAM_TIMEOUT_SECONDS: how long one POST to a subscriber may take, all of it (connecting,
# sending, the answer): a wall-clock deadline, not a per-read timeout.
STREAM_TIMEOUT_SECONDS = env.float("STREAM_TIMEOUT_SECONDS", default=10.0)
# STREAM_SWEEP_AFTER_SECONDS: a message no worker took within this long (the broker lost it)
# is enqueued again by the sweeper, which beat runs every STREAM_SWEEP_INTERVAL_SECONDS.
STREAM_SWEEP_AFTER_SECONDS = env.float("STREAM_SWEEP_AFTER_SECONDS", default=30.0)
STREAM_SWEEP_INTERVAL_SECONDS = env.float("STREAM_SWEEP_INTERVAL_SECONDS", default=5.0)
# A drain delivers one subscription's due messages: STREAM_DRAIN_BATCH notifications' next
# events in flight (one per notification, so each notification's events keep their order),
# on STREAM_DRAIN_CONCURRENCY threads over kept-alive connections, for at most
# STREAM_DRAIN_SECONDS before it queues itself again behind other subscribers.
STREAM_DRAIN_BATCH = env.int("STREAM_DRAIN_BATCH", default=100)
STREAM_DRAIN_CONCURRENCY = env.int("STREAM_DRAIN_CONCURRENCY", default=16)
STREAM_DRAIN_SECONDS = env.float("STREAM_DRAIN_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE |= {
    "stream-sweep": {
        "task": "stream.tasks.stream_sweep_task",
        "schedule": STREAM_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": STREAM_SWEEP_INTERVAL_SECONDS * 5},
    },
    # Finished stream messages go with the logs they came from.
    "stream-messages-purge": {
        "task": "stream.tasks.stream_messages_purge_task",
        "schedule": crontab(hour=3, minute=50),
    },
}
# A delivery is one POST bounded by its deadline, plus two short transactions; a drain is
# rounds of them for its budget, its last round started before the budget ran out.
CELERY_TASK_ANNOTATIONS["stream.tasks.stream_message_deliver_task"] = {
    "soft_time_limit": STREAM_TIMEOUT_SECONDS + 20,
    "time_limit": STREAM_TIMEOUT_SECONDS + 30,
}
CELERY_TASK_ANNOTATIONS["stream.tasks.stream_subscription_drain_task"] = {
    "soft_time_limit": STREAM_DRAIN_SECONDS + STREAM_TIMEOUT_SECONDS + 30,
    "time_limit": STREAM_DRAIN_SECONDS + STREAM_TIMEOUT_SECONDS + 40,
}
if STREAM_RETRY_WINDOW_SECONDS <= 0 or STREAM_RETRY_BACKOFF_SECONDS <= 0:
    raise ImproperlyConfigured(
        "STREAM_RETRY_WINDOW_SECONDS and STREAM_RETRY_BACKOFF_SECONDS must be more than 0."
    )
declare(
    "STREAM_RETRY_WINDOW_SECONDS", "STREAM_RETRY_BACKOFF_SECONDS",
    "STREAM_RETRY_MAX_BACKOFF_SECONDS", "STREAM_TIMEOUT_SECONDS", "STREAM_SWEEP_AFTER_SECONDS",
    "STREAM_SWEEP_INTERVAL_SECONDS", "STREAM_DRAIN_BATCH", "STREAM_DRAIN_CONCURRENCY",
    "STREAM_DRAIN_SECONDS",
)  # fmt: skip
