from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "insights"
    verbose_name = "Insights"

    def ready(self):
        from insights.receivers import callback_refusal_count, rollup_count_event
        from logs.signals import event_recorded
        from webhooks.receivers.base import callback_was_refused

        # Every new event adds to the hourly rollups, in its own transaction.
        event_recorded.connect(rollup_count_event, dispatch_uid="insights.rollups")
        # Refused callbacks are never stored: this counter is their only trace for /metrics.
        callback_was_refused.connect(callback_refusal_count, dispatch_uid="insights.refusals")
