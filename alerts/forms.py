"""The console's alert rule form: every check of alerts.validation, each error on its field."""

from django import forms

from alerts import validation
from alerts.models import AlertRule
from notifications.selectors import notification_type_get


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = [
            "environment",
            "name",
            "kind",
            "notification_type",
            "channel",
            "event",
            "window_minutes",
            "threshold_percent",
            "min_notifications",
            "max_events",
            "email_recipients",
            "webhook_url",
            "enabled",
        ]
        widgets = {"email_recipients": forms.TextInput(attrs={"size": 80})}

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind", "")
        errors = {
            **validation.channel_errors(kind=kind, channel=cleaned.get("channel", "")),
            **validation.event_errors(
                kind=kind, event=cleaned.get("event", ""), channel=cleaned.get("channel", "")
            ),
            **validation.threshold_errors(
                kind=kind,
                window_minutes=cleaned.get("window_minutes"),
                threshold_percent=cleaned.get("threshold_percent"),
                min_notifications=cleaned.get("min_notifications"),
                max_events=cleaned.get("max_events"),
            ),
            **validation.webhook_errors(url=cleaned.get("webhook_url", "")),
            **validation.recipients_errors(
                email_recipients=cleaned.get("email_recipients", ""),
                webhook_url=cleaned.get("webhook_url", ""),
            ),
            **self._type_errors(cleaned),
        }
        for field, message in errors.items():
            if field not in self.errors:  # a field's own error (not a number…) says it first
                self.add_error(field, message)
        return cleaned

    def _type_errors(self, cleaned) -> dict[str, str]:
        key, environment = cleaned.get("notification_type", ""), cleaned.get("environment")
        if not key or environment is None:
            return {}
        if notification_type_get(environment=environment, key=key) is None:
            return {
                "notification_type": f"{environment.name} has no notification type {key!r}; "
                "use a notification id of its catalogue, or leave it blank for every type."
            }
        return {}
