"""Alerts (alerts/): rule evaluation every minute and the notices' retries."""

from config.settings.environment import declare, env
from config.settings.sending import DEFAULT_FROM_EMAIL
from config.settings.worker import CELERY_BEAT_SCHEDULE, CELERY_TASK_ANNOTATIONS

# Alerts (alerts/). Beat evaluates every enabled rule each minute from per-minute counters;
# notices go out from Celery tasks, retried with backoff.
# ALERTS_FROM_EMAIL: the sender of alert emails (through MAILERS, as notification emails).
ALERTS_FROM_EMAIL = env.str("ALERTS_FROM_EMAIL", default=DEFAULT_FROM_EMAIL)
# ALERTS_NOTICE_MAX_ATTEMPTS: tries per notice before it is marked failed;
# ALERTS_NOTICE_RETRY_BACKOFF_SECONDS: the first wait between them, doubled each time.
ALERTS_NOTICE_MAX_ATTEMPTS = env.int("ALERTS_NOTICE_MAX_ATTEMPTS", default=8)
ALERTS_NOTICE_RETRY_BACKOFF_SECONDS = env.float("ALERTS_NOTICE_RETRY_BACKOFF_SECONDS", default=30.0)
# ALERTS_WEBHOOK_TIMEOUT_SECONDS: how long one webhook (Slack) call may take, all of it (a
# wall-clock deadline).
ALERTS_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERTS_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
CELERY_TASK_ANNOTATIONS["alerts.tasks.alert_notice_send_task"] = {
    "soft_time_limit": ALERTS_WEBHOOK_TIMEOUT_SECONDS + 20,
    "time_limit": ALERTS_WEBHOOK_TIMEOUT_SECONDS + 30,
}
CELERY_BEAT_SCHEDULE |= {
    "alerts-rules-evaluate": {
        "task": "alerts.tasks.alert_rules_evaluate_task",
        "schedule": 60.0,
        # A pass nobody ran within the minute is superseded by the next one.
        "options": {"expires": 55},
    },
    "alerts-minute-counts-purge": {
        "task": "alerts.tasks.minute_counts_purge_task",
        "schedule": 3600.0,
    },
}
declare(
    "ALERTS_FROM_EMAIL", "ALERTS_NOTICE_MAX_ATTEMPTS", "ALERTS_NOTICE_RETRY_BACKOFF_SECONDS",
    "ALERTS_WEBHOOK_TIMEOUT_SECONDS",
)  # fmt: skip
