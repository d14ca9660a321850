from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_partitions_after_migrate(sender, using, plan=None, **kwargs):
    # `migrate` keeps partitions ahead too, so a fresh install never starts on DEFAULT alone.
    from django.conf import settings
    from django.db import connections

    from logs.partitions import partitions_ensure

    if using != "default":
        return
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regclass('logs_notification') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return  # migrated backwards past the log tables
    partitions_ensure(days_ahead=settings.LOG_PARTITIONS_AHEAD)


class LogsConfig(AppConfig):
    name = "logs"
    verbose_name = "Notification logs"

    def ready(self):
        post_migrate.connect(_ensure_partitions_after_migrate, sender=self)
        from accounts.deletion import tenant_purge_register
        from logs.retention import PURGE_ORDER, environment_logs_purge, environment_logs_remain

        # A deleted tenant's log rows go partition by partition (accounts/deletion.py).
        tenant_purge_register(
            name="logs",
            tables=PURGE_ORDER,
            purge=environment_logs_purge,
            remains=environment_logs_remain,
        )
