"""The access audit (audit/): who read which notification, timeline or export."""

from celery.schedules import crontab

from config.settings.environment import ImproperlyConfigured, declare, env
from config.settings.log import LOG_RETENTION_DAYS
from config.settings.worker import (
    CELERY_BEAT_SCHEDULE,
    CELERY_TASK_ANNOTATIONS,
    MAINTENANCE_TASK_LIMITS,
)

# AUDIT_RETENTION_DAYS: days access records are kept (longer than the logs: a question about
# who read a user's data comes after the data itself is gone); older rows go nightly, in
# batches.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=400)
# Not an environment setting: the audit is always on. The benchmark turns it off to measure
# what it costs (bench/audit.py).
AUDIT_ACCESS = True
CELERY_BEAT_SCHEDULE |= {
    "audit-access-records-purge": {
        "task": "audit.tasks.access_records_purge_task",
        "schedule": crontab(hour=3, minute=45),
    },
}
# A purge works in batches: maintenance's hour, not a request task's five minutes.
CELERY_TASK_ANNOTATIONS["audit.tasks.access_records_purge_task"] = MAINTENANCE_TASK_LIMITS
declare("AUDIT_RETENTION_DAYS")
if AUDIT_RETENTION_DAYS < LOG_RETENTION_DAYS:
    raise ImproperlyConfigured(
        "AUDIT_RETENTION_DAYS must be at least LOG_RETENTION_DAYS: the audit of who read the "
        "logs outlives the logs."
    )
