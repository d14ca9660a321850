"""The sandbox provider's simulated callbacks.

STUB: the callbacks branch (`hooks`) replaces this module with the real thing, which posts
provider-format callbacks (per the magic-recipient table in providers.md) to our own
receivers. Until then the sandbox's messages stay at Sent.
"""


def sandbox_callbacks_enqueue(
    *, environment_id: int, channel: str, provider_message_id: str, destination: str
) -> None:
    """Called after the sandbox provider accepted a message and Sent was recorded (from
    transaction.on_commit). Schedules the provider-format callbacks the magic-recipient
    table (providers.md) prescribes, posted to our own receivers."""
