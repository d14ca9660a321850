"""One console search: the box's value tried as each key it could be, with the filters, one
page of `notification_page` each, until a key finds something. Also the page links: keyset
cursors only ("older" passes the last row's cursor; "newer" walks back a trail of the
cursors that led here), never OFFSET and never a COUNT."""

from dataclasses import dataclass, field

from console.interpret import SearchKey, search_key, search_keys_guess
from logs.search_filters import Cursor, NotificationFilters, NotificationPage
from logs.selectors import notification_page

# "Newer" remembers this many pages back; beyond them "Newest" starts over.
TRAIL_MAX = 30
_FIRST_PAGE = "0"  # the trail's word for "no cursor"


@dataclass
class SearchOutcome:
    page: NotificationPage = field(default_factory=NotificationPage)
    searched_as: SearchKey | None = None
    tried: list[SearchKey] = field(default_factory=list)


def console_search(
    *,
    environment_id: int,
    text: str,
    search_as: str,
    filters: dict,
    after: Cursor | None,
    limit: int,
) -> SearchOutcome:
    """ValueError (with what to fix) when the value cannot be searched as asked."""
    if not text:
        page = notification_page(
            environment_id=environment_id,
            filters=NotificationFilters(**filters),
            after=after,
            limit=limit,
        )
        return SearchOutcome(page=page)
    keys = [search_key(search_as, text)] if search_as else search_keys_guess(text)
    outcome = SearchOutcome()
    for key in keys:
        outcome.tried.append(key)
        page = notification_page(
            environment_id=environment_id,
            filters=NotificationFilters(**filters, **key.filters),
            after=after,
            limit=limit,
        )
        outcome.page, outcome.searched_as = page, key
        if page.notifications or page.stopped_early:
            break
    return outcome


@dataclass(frozen=True)
class PagePosition:
    after: Cursor | None
    trail: tuple[str, ...]  # encoded cursors of the pages before this one, oldest last
    tampered: bool = False


def page_position(after: str, back: str) -> PagePosition:
    """Where the request asks to be; a cursor that does not decode starts from page 1."""
    try:
        cursor = Cursor.decode(after) if after else None
        trail = tuple(part for part in back.split(".") if part)[-TRAIL_MAX:]
        for part in trail:
            if part != _FIRST_PAGE:
                Cursor.decode(part)
    except ValueError:
        return PagePosition(None, (), tampered=True)
    return PagePosition(cursor, trail)


def older_params(position: PagePosition, next_cursor: Cursor) -> dict:
    here = position.after.encode() if position.after else _FIRST_PAGE
    return {"after": next_cursor.encode(), "back": ".".join((*position.trail, here)[-TRAIL_MAX:])}


def newer_params(position: PagePosition) -> dict | None:
    if position.after is None:
        return None
    if not position.trail:
        return {}  # the trail was cut: start from the newest
    previous = position.trail[-1]
    params = {"back": ".".join(position.trail[:-1])}
    if previous != _FIRST_PAGE:
        params["after"] = previous
    return params
