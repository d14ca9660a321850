"""Channel providers, chosen per channel by settings (SEND_PROVIDER_<CHANNEL>) and overridable
per environment (ChannelProvider, in the console). See base.py for the interface."""

from django.conf import settings

from notifications.models import PROVIDERS_BY_CHANNEL, ChannelProvider
from notifications.providers.base import (
    Accepted,
    NoProvider,
    OutgoingMessage,
    Provider,
    ProviderError,
    unexpected,
)
from notifications.providers.email import EmailProvider
from notifications.providers.in_app import InAppProvider
from notifications.providers.sandbox import SandboxProvider
from notifications.providers.twilio import TwilioProvider

__all__ = [
    "PROVIDERS_BY_CHANNEL",
    "Accepted",
    "OutgoingMessage",
    "Provider",
    "ProviderError",
    "provider_for_channel",
    "unexpected",
]

PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        EmailProvider(),
        TwilioProvider(),
        SandboxProvider(),
        InAppProvider(),
        NoProvider(),
    )
}


def provider_name_for_channel(*, environment_id: int, channel: str) -> str:
    override = (
        ChannelProvider.objects.filter(environment_id=environment_id, channel=channel)
        .values_list("provider", flat=True)
        .first()
    )
    if override in PROVIDERS_BY_CHANNEL[channel]:
        return override
    return settings.SEND_PROVIDERS.get(channel) or PROVIDERS_BY_CHANNEL[channel][0]


def provider_for_channel(*, environment_id: int, channel: str) -> Provider:
    return PROVIDERS[provider_name_for_channel(environment_id=environment_id, channel=channel)]
