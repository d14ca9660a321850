from django.apps import AppConfig
from django.db import transaction


def _adopt_waiting_callbacks(sender, *, delivery, event, **kwargs):
    # Providers can be faster than our Sent write: their callbacks for the message wait in the
    # inbox (retrying, then orphaned). The Sent that names the message id adopts them once it
    # commits, whoever recorded it (the pipeline, a test, a replay).
    # A dispatch batch adopts for all its Sents at once, when it ends (config.afterwards).
    from config.afterwards import later
    from logs.vocabulary import EventKind
    from webhooks.services import inbox_adopt_many

    if event.kind == EventKind.SENT and delivery is not None and delivery.provider_message_id:
        message_id = delivery.provider_message_id
        transaction.on_commit(lambda: later(inbox_adopt_many, message_id))


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self):
        from logs.erasure import erasure_eraser_register
        from logs.retention import retention_follower_register
        from logs.signals import event_recorded, log_rows_loaded
        from notifications.providers.sandbox import callbacks_scheduler_set
        from webhooks.message_environments import (
            message_environment_remember,
            message_environments_backfill,
            message_environments_purge,
        )
        from webhooks.models import InboxEntry
        from webhooks.sandbox import sandbox_callbacks_enqueue
        from webhooks.services import inbox_entries_erase

        event_recorded.connect(_adopt_waiting_callbacks, dispatch_uid="webhooks.adopt")
        # On Citus, a Sent's message id and environment, for callbacks that name none.
        event_recorded.connect(
            message_environment_remember, dispatch_uid="webhooks.message_environment"
        )
        log_rows_loaded.connect(
            message_environments_backfill, dispatch_uid="webhooks.message_environment_backfill"
        )
        # Its rows of the log days the nightly retention drops go with them.
        retention_follower_register(name="webhooks", purge=message_environments_purge)
        # A user's erasure (logs.erasure) deletes the callbacks that name their deliveries.
        erasure_eraser_register(table=InboxEntry._meta.db_table, batch=inbox_entries_erase)
        # The sandbox provider's callbacks are scheduled here (it imports nothing of webhooks).
        callbacks_scheduler_set(sandbox_callbacks_enqueue)
