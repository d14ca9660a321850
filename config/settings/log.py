"""The log (logs/): how long it is kept, its daily partitions and their nightly maintenance."""

from celery.schedules import crontab

from config.settings.environment import ImproperlyConfigured, declare, env
from config.settings.worker import CELERY_BEAT_SCHEDULE

# LOG_RETENTION_DAYS: days of notification logs kept; older days are dropped nightly.
LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=7)

# LOG_PARTITIONS_AHEAD: daily partitions created ahead of today (beat and `migrate` keep them).
LOG_PARTITIONS_AHEAD = env.int("LOG_PARTITIONS_AHEAD", default=3)

# LOG_PARTITION_LOCK_TIMEOUT_MS: the longest a partition change (creating or dropping a day)
# waits for its locks, all together, before it gives way and retries later; so also the
# longest a writer queues behind one. Keep it below PostgreSQL's deadlock_timeout (1 s).
LOG_PARTITION_LOCK_TIMEOUT_MS = env.int("LOG_PARTITION_LOCK_TIMEOUT_MS", default=300)

# LOG_FOLD_PIPELINE_EVENTS: the send pipeline's own events (every Received, the first
# attempt's Sending, the pipeline's Sent, the in-app Delivered) are kept in their notification
# and delivery columns only, not also as event rows (logs/timeline.py). Off: the rows are
# written too, so a release before logs 0020 running beside this one (a rolling upgrade from
# it, or a rollback to it) still sees complete timelines. docs/operating.md, "Upgrading".
LOG_FOLD_PIPELINE_EVENTS = env.bool("LOG_FOLD_PIPELINE_EVENTS", default=True)

# LOG_INDEX_COMPACT_AFTER_DAYS: a day's log partitions have their indexes rebuilt (compacted,
# online) by the nightly maintenance once the day ended this many days ago (late callbacks
# still arrive for a while); 0 turns the compaction off (logs/index_compaction.py).
LOG_INDEX_COMPACT_AFTER_DAYS = env.int("LOG_INDEX_COMPACT_AFTER_DAYS", default=1)
if LOG_INDEX_COMPACT_AFTER_DAYS < 0:
    raise ImproperlyConfigured(
        "LOG_INDEX_COMPACT_AFTER_DAYS is in days, 0 or more (0: no index compaction)."
    )
if LOG_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("LOG_RETENTION_DAYS must be at least 1 (days of logs kept).")
if LOG_PARTITIONS_AHEAD < 1:
    raise ImproperlyConfigured("LOG_PARTITIONS_AHEAD must be at least 1.")
if not 10 <= LOG_PARTITION_LOCK_TIMEOUT_MS < 1000:
    raise ImproperlyConfigured(
        "LOG_PARTITION_LOCK_TIMEOUT_MS must be from 10 to 999 (milliseconds; below "
        "PostgreSQL's deadlock_timeout, so a partition change always gives way to writers)."
    )
declare(
    "LOG_RETENTION_DAYS", "LOG_PARTITIONS_AHEAD", "LOG_PARTITION_LOCK_TIMEOUT_MS",
    "LOG_FOLD_PIPELINE_EVENTS", "LOG_INDEX_COMPACT_AFTER_DAYS",
)  # fmt: skip

CELERY_BEAT_SCHEDULE |= {
    # Keep daily log partitions LOG_PARTITIONS_AHEAD days ahead (idempotent; cheap).
    "logs-partitions-ensure": {"task": "logs.tasks.partitions_ensure_task", "schedule": 3600.0},
    # Drop whole days past LOG_RETENTION_DAYS, every night at 03:15 UTC.
    "logs-retention-purge": {
        "task": "logs.tasks.retention_purge_task",
        "schedule": crontab(hour=3, minute=15),
    },
    # Rebuild the indexes of finished days (LOG_INDEX_COMPACT_AFTER_DAYS), online, every night
    # at 04:15 UTC: after the purge and the content clearing, so never on a day about to go.
    "logs-index-compact": {
        "task": "logs.tasks.index_compact_task",
        "schedule": crontab(hour=4, minute=15),
    },
    # Clear the content of notifications past their environment's content retention, in
    # batches, every night at 03:45 UTC (after the purge: no content of days about to go).
    "logs-content-retention": {
        "task": "logs.tasks.content_retention_task",
        "schedule": crontab(hour=3, minute=45),
    },
    # Run again the erasures of a user's data whose task was lost or whose worker died.
    "logs-erasures-resume": {"task": "logs.tasks.erasures_resume_task", "schedule": 300.0},
}
