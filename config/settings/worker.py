"""Celery: the broker, the two queues, time limits, the beat schedule (each concern's module
adds its own entries) and the heartbeats that show a stopped worker or beat."""

from kombu import Exchange, Queue

from config.settings.datastores import REDIS_URL
from config.settings.environment import ImproperlyConfigured, declare, env

# Celery. Tasks are acknowledged after they run and re-queued when a worker dies, so the
# broker or a worker going away delays work but never drops it.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# socket_timeout: a Redis that keeps the connection and stops answering (failover, a dropped
# route) fails a publish after this long instead of holding its thread forever (kombu's
# default): the task batchers' threads (config/batching.py), the sweepers in beat. Consumers
# are not affected: BRPOP waits 1 s at a time and kombu checks that connection itself.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": 5.0,
    "socket_connect_timeout": 2.0,
}
CELERY_TIMEZONE = "UTC"
# WORKAROUND: Celery's Django fix-up closes every database connection before and after every
# task unless this is set, so each task opened a new PostgreSQL connection (about 15 ms, most
# of a short task). With it, the fix-up closes them only every this many tasks, and
# config/celery.py closes unusable or obsolete ones around each task as Django does around
# each request (DATABASE_CONN_MAX_AGE, health checks).
CELERY_DB_REUSE_MAX = 1000
# Two queues. "celery" carries the product's own work (sends, callbacks, sweeps, purges);
# "outbound" carries calls to addresses tenants gave (stream deliveries, alert webhooks), which
# a slow or hostile endpoint can hold up to its deadline. Production runs a worker per queue
# (`-Q celery` and `-Q outbound`, as Procfile.dev does) so sends and callbacks never wait
# behind a tenant's endpoint; a worker started without -Q takes both.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name) for name in ("celery", "outbound")
]
CELERY_TASK_ROUTES = {
    "stream.tasks.stream_subscription_drain_task": {"queue": "outbound"},
    "stream.tasks.stream_message_deliver_task": {"queue": "outbound"},
    "alerts.tasks.alert_notice_send_task": {"queue": "outbound"},
}
# Time limits, per family of task (prefork workers enforce them): a task past its soft limit
# gets SoftTimeLimitExceeded (its message is acknowledged; the family's sweeper takes the
# work up again), past the hard limit its process is replaced. Every task has the default;
# maintenance, which works in batches over big tables, has an hour.
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
MAINTENANCE_TASK_LIMITS = {"soft_time_limit": 3600, "time_limit": 3660}
CELERY_TASK_ANNOTATIONS = {
    name: MAINTENANCE_TASK_LIMITS
    for name in (
        "logs.tasks.partitions_ensure_task",
        "logs.tasks.retention_purge_task",
        "logs.tasks.content_retention_task",
        "logs.tasks.index_compact_task",
        "notifications.tasks.send_tables_purge_task",
        "accounts.tasks.environment_purge_task",
        "accounts.tasks.account_purge_task",
        "accounts.tasks.tenant_deletions_resume_task",
        "stream.tasks.stream_messages_purge_task",
        "alerts.tasks.minute_counts_purge_task",
        "insights.tasks.rollups_purge_task",
    )
}
# Workers survive Redis going away with tasks in flight (config/celery.py).
if REDIS_URL.partition("://")[0] in ("redis", "rediss"):
    CELERY_BROKER_TRANSPORT = "config.celery:RedisTransport"
# Filled by each concern's module (config/settings/log.py, sending.py, ...) with its entries.
CELERY_BEAT_SCHEDULE: dict = {}

# Beat writes its own heartbeat as it ticks and sends a heartbeat task to each queue (celery,
# outbound) every HEARTBEAT_INTERVAL_SECONDS. HEARTBEAT_SILENT_SECONDS: a worker or beat
# silent for longer is shown as stopped (a banner on every console page, "degraded" in
# /readyz). QUEUE_BACKLOG_LIMIT: tasks waiting in a queue beyond which it is shown as behind.
HEARTBEAT_INTERVAL_SECONDS = env.float("HEARTBEAT_INTERVAL_SECONDS", default=10.0)
HEARTBEAT_SILENT_SECONDS = env.float("HEARTBEAT_SILENT_SECONDS", default=60.0)
QUEUE_BACKLOG_LIMIT = env.int("QUEUE_BACKLOG_LIMIT", default=1000)
# Beat keeps its schedule in memory, never in a file. Celery's default (PersistentScheduler)
# keeps it in a shelve file, which a SIGKILL in the middle of a write can leave locked ("dbm.
# sqlite3.error: locking protocol" on Python 3.13): the next beat then fails at start and
# nothing sweeps. Every entry is idempotent, so one a restart skips runs at its next
# time (a purge drops every day past retention, not only yesterday).
# config.heartbeat's Scheduler is Celery's in-memory one that also writes beat's heartbeat.
CELERY_BEAT_SCHEDULER = "config.heartbeat:Scheduler"
CELERY_BEAT_SCHEDULE |= {
    f"heartbeat-{queue}": {
        "task": "config.tasks.worker_heartbeat_task",
        "schedule": HEARTBEAT_INTERVAL_SECONDS,
        "args": (queue,),
        # A heartbeat that waited in line longer than this is dropped, so a queue far behind
        # goes silent too (its length then says "behind" rather than "no worker").
        "options": {"queue": queue, "expires": HEARTBEAT_INTERVAL_SECONDS * 2},
    }
    for queue in ("celery", "outbound")
}
declare(
    "HEARTBEAT_INTERVAL_SECONDS", "HEARTBEAT_SILENT_SECONDS", "QUEUE_BACKLOG_LIMIT",
)  # fmt: skip
if not 0 < HEARTBEAT_INTERVAL_SECONDS < HEARTBEAT_SILENT_SECONDS or QUEUE_BACKLOG_LIMIT < 1:
    raise ImproperlyConfigured(
        "HEARTBEAT_INTERVAL_SECONDS must be more than 0 and less than HEARTBEAT_SILENT_SECONDS "
        "(a heartbeat must come before silence is reported); QUEUE_BACKLOG_LIMIT at least 1."
    )
