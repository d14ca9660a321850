from django.apps import AppConfig


class StreamConfig(AppConfig):
    name = "stream"
    verbose_name = "Outbound event stream"

    def ready(self):
        from logs.signals import event_recorded
        from stream.services import stream_event_enqueue

        # Inside the event's transaction: the outbox rows commit or roll back with it.
        event_recorded.connect(stream_event_enqueue, dispatch_uid="stream.event_enqueue")
