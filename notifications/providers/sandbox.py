"""The sandbox: a provider for every channel that sends nothing off the machine.

It decides only what happens at send time: an email whose local part is `reject` is refused
(Failed at send); everything else is accepted with an id like `sbx-<uuid>` and recorded in
SandboxMessage. Once Sent is committed, webhooks.sandbox schedules the provider-format
callbacks of the magic-recipient table (bounce, busy, undelivered ...): the webhooks app hands
that scheduler to this provider in its AppConfig.ready (`callbacks_scheduler_set`), since the
providers sit below the webhooks app and import nothing of it.
"""

import time
import uuid
from collections.abc import Callable, Sequence

from django.conf import settings

from logs.vocabulary import Channel
from notifications.models import SandboxMessage
from notifications.providers.base import Accepted, OutgoingMessage, Provider, ProviderError

REJECTED_LOCAL_PART = "reject"

# Schedules a sent message's callbacks: called once Sent is recorded, with environment_id,
# channel, provider_message_id and destination (webhooks.sandbox.sandbox_callbacks_enqueue,
# set by webhooks/apps.py). None: the sandbox sends no callbacks.
_callbacks_scheduler: Callable[..., None] | None = None


def callbacks_scheduler_set(scheduler: Callable[..., None] | None) -> None:
    """Hand the sandbox what schedules its messages' provider callbacks (see above)."""
    global _callbacks_scheduler
    _callbacks_scheduler = scheduler


class SandboxProvider(Provider):
    name = "sandbox"

    def send(self, message: OutgoingMessage) -> Accepted:
        [result] = self.send_many([message], start_by=time.monotonic())
        if isinstance(result, Exception):
            raise result
        return result

    def send_many(
        self, messages: Sequence[OutgoingMessage], *, start_by: float
    ) -> list[Accepted | Exception | None]:
        """Every message at once (as a provider's concurrent calls): one wait of
        SANDBOX_SEND_DELAY_SECONDS and one INSERT for those accepted."""
        if settings.SANDBOX_SEND_DELAY_SECONDS:
            time.sleep(settings.SANDBOX_SEND_DELAY_SECONDS)
        results: list[Accepted | Exception | None] = []
        kept = []
        for message in messages:
            local_part = message.destination.partition("@")[0].lower()
            if message.channel == Channel.EMAIL and local_part == REJECTED_LOCAL_PART:
                results.append(
                    ProviderError(
                        "Rejected by the sandbox: reject@ is its magic address for a refused "
                        "message.",
                        code="rejected",
                    )
                )
                continue
            accepted = Accepted(provider_message_id=f"sbx-{uuid.uuid4()}", reports_delivery=True)
            results.append(accepted)
            kept.append(
                SandboxMessage(
                    environment_id=message.environment_id,
                    channel=message.channel,
                    provider_message_id=accepted.provider_message_id,
                    notification_id=message.notification_id,
                    destination=message.destination,
                    subject=message.content.subject,
                )
            )
        SandboxMessage.objects.bulk_create(kept)
        return results

    def after_sent(self, message: OutgoingMessage, accepted: Accepted) -> None:
        if _callbacks_scheduler is None:
            return
        _callbacks_scheduler(
            environment_id=message.environment_id,
            channel=message.channel,
            provider_message_id=accepted.provider_message_id,
            destination=message.destination,
        )
