"""Receivers that keep the insights tables up to date; each calls one service."""

import logging

import redis

from insights.services import callback_refusal_record, rollup_event_count

logger = logging.getLogger(__name__)


def rollup_count_event(
    sender, *, notification, delivery, event, first_of_kind, batch=None, **kwargs
) -> None:
    # In the event's batch: the delta commits or rolls back with it.
    rollup_event_count(
        notification=notification, event=event, batch=batch, first_of_kind=first_of_kind
    )


def callback_refusal_count(sender, *, provider: str, status: int, **kwargs) -> None:
    # A count that cannot be written must not turn the provider's 4xx/503 into a 500.
    try:
        callback_refusal_record(provider=provider, status=status)
    except redis.RedisError:
        logger.warning("Could not count a refused %s callback (%d)", provider, status)
