from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from insights.selectors import DIMENSIONS
from logs.vocabulary import Channel

PERIODS = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
    "395d": ("Last 13 months", timedelta(days=395)),
}
DEFAULT_PERIOD = "7d"
# Hourly points beyond a week make an unreadable chart (and a heavy SVG).
HOURLY_MAX = timedelta(days=7)


class InsightsFilterForm(forms.Form):
    environment = forms.TypedChoiceField(coerce=int, required=False)
    period = forms.ChoiceField(
        choices=[(key, label) for key, (label, _) in PERIODS.items()], required=False
    )
    granularity = forms.ChoiceField(
        choices=[("", "Automatic"), ("hour", "Per hour"), ("day", "Per day")], required=False
    )
    by = forms.ChoiceField(
        label="Break down by",
        choices=[(key, key.capitalize()) for key in DIMENSIONS],
        required=False,
    )
    # Narrow every chart and table to one type, channel and/or template (blank: all).
    type = forms.CharField(label="Type", max_length=100, required=False, strip=True)
    channel = forms.ChoiceField(choices=[("", "Every channel"), *Channel.choices], required=False)
    template = forms.CharField(label="Template", max_length=255, required=False, strip=True)
    user_id = forms.CharField(label="User id", max_length=255, required=False, strip=True)

    def __init__(self, data, *, environments):
        # The period shown when none is asked for (7 days) is the one the dropdown shows:
        # unset, the select fell back to its first option, "Last 24 hours", over a week's
        # charts.
        data = data.copy()
        if not data.get("period"):
            data["period"] = DEFAULT_PERIOD
        super().__init__(data)
        self.fields["environment"].choices = [
            (each.id, f"{each.account.name} / {each.name}") for each in environments
        ]

    def clean(self):
        cleaned = super().clean()
        period = PERIODS[cleaned.get("period") or DEFAULT_PERIOD][1]
        granularity = cleaned.get("granularity") or ("hour" if period <= HOURLY_MAX else "day")
        if granularity == "hour" and period > HOURLY_MAX:
            self.add_error(
                "granularity",
                "Per hour is for periods up to 7 days; choose Per day or a shorter period.",
            )
        cleaned["granularity"] = granularity
        cleaned["by"] = cleaned.get("by") or "type"
        cleaned["narrow"] = {
            column: cleaned[name] for name, column in DIMENSIONS.items() if cleaned.get(name)
        }
        end = _next_hour(timezone.now())
        cleaned["end"], cleaned["start"] = end, end - period
        return cleaned


def _next_hour(moment: datetime) -> datetime:
    return moment.astimezone(timezone.UTC).replace(minute=0, second=0, microsecond=0) + timedelta(
        hours=1
    )
