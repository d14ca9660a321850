from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self):
        from alerts.counting import count_event
        from logs.signals import event_recorded

        event_recorded.connect(count_event, dispatch_uid="alerts.count_event")
