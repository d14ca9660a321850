"""Insights and metrics (insights/): hourly rollups, the insights page and /metrics."""

from celery.schedules import crontab

from config.settings.environment import ImproperlyConfigured, declare, env
from config.settings.log import LOG_RETENTION_DAYS
from config.settings.worker import CELERY_BEAT_SCHEDULE

# METRICS_TOKEN: the bearer token Prometheus or Datadog sends to GET /metrics
# (`Authorization: Bearer <token>`); unset, /metrics answers 404 saying how to enable it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# METRICS_WINDOW_SECONDS: the recent window the gauges count over (notifications by status,
# deliveries by state, callbacks stored, the freshness histogram): indexed range counts, never
# a scan of the whole log per scrape.
METRICS_WINDOW_SECONDS = env.int("METRICS_WINDOW_SECONDS", default=3600)
# METRICS_CACHE_SECONDS: how long those window counts are served before a scrape counts them
# again (shared by every process through the cache): the hour of the log is counted at most
# this often, however many Prometheus replicas and workers scrape.
METRICS_CACHE_SECONDS = env.float("METRICS_CACHE_SECONDS", default=30.0)
# INSIGHTS_FOLD_INTERVAL_SECONDS: how often beat folds recorded events into the hourly rollups
# (the insights page is at most this far behind the log).
INSIGHTS_FOLD_INTERVAL_SECONDS = env.float("INSIGHTS_FOLD_INTERVAL_SECONDS", default=10.0)
# INSIGHTS_ROLLUP_RETENTION_DAYS: days of hourly rollups kept (13 months by default: longer
# than the logs themselves); older ones go nightly.
INSIGHTS_ROLLUP_RETENTION_DAYS = env.int("INSIGHTS_ROLLUP_RETENTION_DAYS", default=396)
CELERY_BEAT_SCHEDULE |= {
    "insights-rollups-fold": {
        "task": "insights.tasks.rollups_fold_task",
        "schedule": INSIGHTS_FOLD_INTERVAL_SECONDS,
        # A fold nobody ran soon is superseded by the next one.
        "options": {"expires": INSIGHTS_FOLD_INTERVAL_SECONDS},
    },
    "insights-rollups-purge": {
        "task": "insights.tasks.rollups_purge_task",
        "schedule": crontab(hour=3, minute=30),
    },
}
declare(
    "METRICS_TOKEN", "METRICS_WINDOW_SECONDS", "METRICS_CACHE_SECONDS",
    "INSIGHTS_FOLD_INTERVAL_SECONDS",
    "INSIGHTS_ROLLUP_RETENTION_DAYS",
)  # fmt: skip
if METRICS_WINDOW_SECONDS < 60 or INSIGHTS_FOLD_INTERVAL_SECONDS <= 0:
    raise ImproperlyConfigured(
        "METRICS_WINDOW_SECONDS must be at least 60 and INSIGHTS_FOLD_INTERVAL_SECONDS more than 0."
    )
if not 0 <= METRICS_CACHE_SECONDS <= 300:
    raise ImproperlyConfigured(
        "METRICS_CACHE_SECONDS must be between 0 (count at every scrape) and 300."
    )
if INSIGHTS_ROLLUP_RETENTION_DAYS < LOG_RETENTION_DAYS:
    raise ImproperlyConfigured(
        "INSIGHTS_ROLLUP_RETENTION_DAYS must be at least LOG_RETENTION_DAYS: rollups outlive "
        "the logs (rollups_rebuild can only recompute what the log still holds)."
    )
