"""Follow-ups a loop hands over to be done once for all its steps.

A dispatch batch records one Sent per transaction, and each Sent has follow-ups (adopt the
provider callbacks that waited for its message id, schedule the sandbox's callbacks) that
alone cost a round trip each (to PostgreSQL, to Redis). Inside `collected()`, `later(flush,
item)` keeps the item, and when the block ends `flush` runs once with every item it was
given, in order; outside such a block it runs at once with the one item. Call `later` from
`transaction.on_commit`, so that only what committed is followed up. The items are flushed
when the block ends, normally or not: what committed before an error is followed up too.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_collected: ContextVar[dict[Callable, list] | None] = ContextVar("afterwards", default=None)


@contextmanager
def collected() -> Iterator[None]:
    """Hold the `later` items given inside the block; flush each kind once at its end."""
    if _collected.get() is not None:  # nested: the outer block flushes
        yield
        return
    token = _collected.set({})
    try:
        yield
    finally:
        groups = _collected.get()
        _collected.reset(token)
        for flush, items in groups.items():
            flush(items)


def later(flush: Callable[[list], Any], item: Any) -> None:
    """flush([item, ...]) at the end of the current collected() block, else flush([item])."""
    groups = _collected.get()
    if groups is None:
        flush([item])
    else:
        groups.setdefault(flush, []).append(item)
