"""Celery tasks of the webhooks app: thin shells over webhooks.services and the sandbox."""

from celery import shared_task

from webhooks import sandbox, services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inbox_process_task(inbox_id: int | None = None) -> dict:
    """Process a batch of stored callbacks: row `inbox_id` (the one that enqueued this task)
    when no other task took it yet, and the oldest other claimable rows, up to
    services.PROCESS_BATCH. Idempotent: a processed row is never claimed again."""
    return services.inbox_process(inbox_ids=[] if inbox_id is None else [inbox_id])


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inbox_process_batch_task(inbox_ids: list[str]) -> dict:
    """What webhooks.inbox.inbox_batcher sends: the rows one server process stored within a
    few tens of milliseconds, processed as one batch (with the oldest other claimable rows,
    up to services.PROCESS_BATCH). Idempotent, as inbox_process_task."""
    return services.inbox_process(inbox_ids=[int(inbox_id) for inbox_id in inbox_ids])


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inbox_sweep_task() -> int:
    """Beat, every WEBHOOK_SWEEP_INTERVAL seconds: enqueue pending callbacks that are due."""
    return services.inbox_sweep()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def orphans_adopt_task() -> int:
    """Beat, every minute: reopen orphaned callbacks whose message is known by now."""
    return services.orphans_adopt()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sandbox_callbacks_send_task(
    environment_id: int, channel: str, provider_message_id: str, destination: str
) -> int:
    """Post a sandbox message's callbacks to our own receivers (see webhooks/sandbox.py)."""
    return sandbox.sandbox_callbacks_send(
        environment_id=environment_id,
        channel=channel,
        provider_message_id=provider_message_id,
        destination=destination,
    )


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sandbox_callbacks_send_many_task(messages: list[list]) -> int:
    """sandbox_callbacks_send_task for a dispatch batch's messages, one after the other:
    each [environment_id, channel, provider_message_id, destination]."""
    return sum(
        sandbox.sandbox_callbacks_send(
            environment_id=environment_id,
            channel=channel,
            provider_message_id=provider_message_id,
            destination=destination,
        )
        for environment_id, channel, provider_message_id, destination in messages
    )
