"""The search form: one box, the filters beside it, the page cursor. Every value is checked
here, so a wrong one becomes a message on the page, never a 500."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from console.interpret import KEY_LABELS
from logs.vocabulary import SUB_KINDS_BY_KIND, Channel, EventKind, EventSubKind, NotificationStatus


def event_choices() -> list[tuple[str, str]]:
    """ "kind" for any event of a kind, "kind:sub_kind" for one sub-kind ("Failed - Bounce")."""
    choices = [("", "Any event")]
    for kind in EventKind:
        choices.append((kind.value, f"{kind.label} (any)"))
        for sub_kind in sorted(
            SUB_KINDS_BY_KIND.get(kind, ()), key=lambda s: EventSubKind(s).label
        ):
            choices.append((f"{kind.value}:{sub_kind}", EventSubKind(sub_kind).label))
    return choices


class PlainSelect(forms.Select):
    """A <select> rendered in Python: Django's template per option costs the list page a
    fifth of its time for the ~80 options of its filters."""

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, attrs)
        selected = "" if value is None else str(value)
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (key, mark_safe(" selected") if str(key) == selected else "", label)
                for key, label in self.choices
            ),
        )
        return format_html(
            '<select name="{}"{}>{}</select>', name, flatatt({"id": attrs.get("id")}), options
        )


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=320, strip=True)
    search_as = forms.ChoiceField(
        required=False,
        choices=[("", "Guess from the value"), *KEY_LABELS.items()],
        widget=PlainSelect,
    )
    environment = forms.TypedChoiceField(coerce=int, required=True, widget=PlainSelect)
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *NotificationStatus.choices],
        widget=PlainSelect,
    )
    type = forms.ChoiceField(required=False, widget=PlainSelect)
    channel = forms.ChoiceField(
        required=False, choices=[("", "Any channel"), *Channel.choices], widget=PlainSelect
    )
    event = forms.ChoiceField(required=False, choices=event_choices(), widget=PlainSelect)
    date_from = forms.DateField(required=False, label="From (day)")
    date_to = forms.DateField(required=False, label="To (day, inclusive)")

    def __init__(self, data, *, environments, type_choices, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["environment"].choices = [
            (environment.id, f"{environment.account.name} / {environment.name}")
            for environment in environments
        ]
        self.fields["type"].choices = [("", "Any type"), *type_choices]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The date range is empty: its start is after its end.")
        return cleaned

    def filter_kwargs(self, zone: ZoneInfo) -> dict:
        """NotificationFilters keyword arguments for the filters (not the search box)."""
        data = self.cleaned_data
        kwargs: dict = {}
        if data.get("status"):
            kwargs["statuses"] = [data["status"]]
        if data.get("type"):
            kwargs["notification_types"] = [data["type"]]
        if data.get("channel"):
            kwargs["channels"] = [data["channel"]]
        if data.get("event"):
            kind, _, sub_kind = data["event"].partition(":")
            kwargs["event_kind"], kwargs["event_sub_kind"] = kind, sub_kind
        # Days are the viewer's days: midnight in their zone, the end day included.
        if data.get("date_from"):
            kwargs["created_from"] = datetime.combine(data["date_from"], time(), zone)
        if data.get("date_to"):
            kwargs["created_to"] = datetime.combine(
                data["date_to"] + timedelta(days=1), time(), zone
            )
        return kwargs


def environment_from(data, environments) -> int | None:
    """The environment the request asks for if it is one of the viewer's, else their first
    (the form then says what is wrong with the value)."""
    ids = [environment.id for environment in environments]
    try:
        asked = int(data.get("environment", ""))
    except (TypeError, ValueError):
        asked = None
    if asked in ids:
        return asked
    return ids[0] if ids else None
