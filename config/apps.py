from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate


def _lift_statement_timeout(*, using, **kwargs) -> None:
    # Migrations may rewrite or index large tables: the web requests' statement limit would
    # cancel them half-way. Sent once per app; SET is idempotent.
    from config.db import statement_timeout_lift

    statement_timeout_lift(using=using)


def _restore_statement_timeout(*, using, **kwargs) -> None:
    from django.conf import settings

    from config.db import role_settings_apply, statement_timeout_restore

    statement_timeout_restore(using=using)
    if settings.DATABASE_POOLED or settings.DATABASE_CITUS:
        # Behind a pooler the timeouts are the role's defaults in the database, not startup
        # options: migrate (re)applies them, so a changed DATABASE_STATEMENT_TIMEOUT takes
        # effect on the server connections the pooler opens from then on. On Citus the
        # startup options reach the coordinator's session only, not its connections to the
        # workers, where the rows are locked: Citus propagates ALTER ROLE ... SET to every
        # node, so a lock wait on a worker gives way after DATABASE_LOCK_TIMEOUT too.
        role_settings_apply(using=using)


class ConfigConfig(AppConfig):
    name = "config"
    verbose_name = "Configuration"

    def ready(self) -> None:
        pre_migrate.connect(_lift_statement_timeout, dispatch_uid="config.lift_statement_timeout")
        post_migrate.connect(
            _restore_statement_timeout, dispatch_uid="config.restore_statement_timeout"
        )
