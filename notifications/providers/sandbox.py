"""The sandbox: a provider for every channel that sends nothing off the machine.

It decides only what happens at send time: an email whose local part is `reject` is refused
(Failed at send); everything else is accepted with an id like `sbx-<uuid>` and recorded in
SandboxMessage. Once Sent is committed, webhooks.sandbox schedules the provider-format
callbacks of the magic-recipient table (bounce, busy, undelivered ...).
"""

import time
import uuid

from django.conf import settings

from logs.vocabulary import Channel
from notifications.models import SandboxMessage
from notifications.providers.base import Accepted, OutgoingMessage, Provider, ProviderError
from webhooks.sandbox import sandbox_callbacks_enqueue

REJECTED_LOCAL_PART = "reject"


class SandboxProvider(Provider):
    name = "sandbox"

    def send(self, message: OutgoingMessage) -> Accepted:
        if settings.SANDBOX_SEND_DELAY_SECONDS:
            time.sleep(settings.SANDBOX_SEND_DELAY_SECONDS)
        local_part = message.destination.partition("@")[0].lower()
        if message.channel == Channel.EMAIL and local_part == REJECTED_LOCAL_PART:
            raise ProviderError(
                "Rejected by the sandbox: reject@ is its magic address for a refused message.",
                code="rejected",
            )
        accepted = Accepted(provider_message_id=f"sbx-{uuid.uuid4()}", reports_delivery=True)
        SandboxMessage.objects.create(
            environment_id=message.environment_id,
            channel=message.channel,
            provider_message_id=accepted.provider_message_id,
            notification_id=message.notification_id,
            destination=message.destination,
            subject=message.content.subject,
        )
        return accepted

    def after_sent(self, message: OutgoingMessage, accepted: Accepted) -> None:
        sandbox_callbacks_enqueue(
            environment_id=message.environment_id,
            channel=message.channel,
            provider_message_id=accepted.provider_message_id,
            destination=message.destination,
        )
