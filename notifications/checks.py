"""Start-up checks of the sending settings: a provider that cannot carry its channel, or
Twilio chosen without credentials, stops `manage.py check` (and every server start)."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def send_providers_check(app_configs, **kwargs) -> list[Error]:
    from notifications.providers import PROVIDERS_BY_CHANNEL

    errors = []
    for channel, name in settings.SEND_PROVIDERS.items():
        allowed = PROVIDERS_BY_CHANNEL.get(channel, ())
        if name not in allowed:
            errors.append(
                Error(
                    f"SEND_PROVIDER_{channel.upper()}={name!r} cannot send {channel}.",
                    hint=f"Use one of: {', '.join(allowed)}.",
                    id="notifications.E001",
                )
            )
    uses_twilio = "twilio" in settings.SEND_PROVIDERS.values()
    missing = [
        name
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
        if not getattr(settings, name)
    ]
    if uses_twilio and missing:
        errors.append(
            Error(
                f"Twilio sends SMS or calls but {', '.join(missing)} is not set.",
                hint="Set them, or SEND_PROVIDER_SMS/SEND_PROVIDER_CALL=sandbox.",
                id="notifications.E002",
            )
        )
    return errors
