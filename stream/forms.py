from django import forms
from django.core.exceptions import ValidationError

from config import outbound
from logs.vocabulary import EventKind, EventSubKind
from stream.models import Subscription
from stream.services.subscriptions import subscription_filters_check


class SubscriptionForm(forms.ModelForm):
    """Kinds and sub-kinds as checkboxes; every rule the service applies, as errors on the
    field to fix."""

    kinds = forms.MultipleChoiceField(
        label="Event kinds", choices=EventKind.choices, widget=forms.CheckboxSelectMultiple
    )
    sub_kinds = forms.MultipleChoiceField(
        label="Sub-kinds",
        choices=[c for c in EventSubKind.choices if c[0]],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Only these sub-kinds of the chosen kinds; none chosen: every sub-kind.",
    )

    class Meta:
        model = Subscription
        fields = ["environment", "url", "kinds", "sub_kinds", "payload_format", "enabled"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            outbound.url_check(url)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None
        return url

    def clean(self):
        cleaned = super().clean()
        if "kinds" not in cleaned:
            return cleaned  # already an error on the field
        errors = subscription_filters_check(
            kinds=cleaned.get("kinds") or [],
            sub_kinds=cleaned.get("sub_kinds") or [],
            payload_format=cleaned.get("payload_format") or "",
        )
        for field, message in errors.items():
            self.add_error(field, message)
        return cleaned
