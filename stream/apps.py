from django.apps import AppConfig


class StreamConfig(AppConfig):
    name = "stream"
    verbose_name = "Outbound event stream"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from logs.erasure import erasure_eraser_register
        from logs.signals import event_recorded
        from stream.models import StreamMessage, Subscription
        from stream.services.outbox import stream_event_enqueue, subscriptions_cache
        from stream.services.upkeep import stream_messages_erase

        for signal in (post_save, post_delete):
            signal.connect(
                subscriptions_cache.clear,
                sender=Subscription,
                dispatch_uid=f"stream.subscriptions_cache.{signal}",
            )

        # Inside the event's transaction: the outbox rows commit or roll back with it.
        event_recorded.connect(stream_event_enqueue, dispatch_uid="stream.event_enqueue")
        # A user's erasure (logs.erasure) deletes the stream's copies of their events too.
        erasure_eraser_register(table=StreamMessage._meta.db_table, batch=stream_messages_erase)
