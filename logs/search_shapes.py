"""One SQL text per shape of search (logs.selectors.notification_page), built once.

A search's SQL is the same text for every search of its shape: which filters are given, how
many values each list has, the statuses, channels and event kinds (they choose the indexes
and are written in the text), whether a cursor is given, the page size and the columns. Its
other values (the environment, ids, addresses, numbers, dates, the cursor) are only bound.
Building that text through the ORM was about a third of a list request's CPU: it is built
once per shape, with stand-in values ("markers"), and each search binds its own values in
the markers' places. It is built twice, with two sets of markers, and cached only if both
texts are the same and every parameter is either a marker in the same place or the same
constant: a value that changed the text, or that the ORM transformed on its way to a
parameter, leaves that shape uncached (built per search, as before).
"""

import functools
import itertools
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta

from logs.search_conditions import prefix_end
from logs.search_filters import Cursor, NotificationFilters

# The values only bound, in the order of a search's atoms (the environment id first).
_BOUND_LISTS = ("tracking_ids", "user_ids", "notification_types")
_BOUND_SCALARS = (
    "email", "email_prefix", "number", "provider_message_id", "created_from", "created_to",
)  # fmt: skip
_DATES = {"created_from", "created_to"}
# Filters written in the text: part of the shape.
_SHAPE_FILTERS = ("statuses", "channels", "event_kind", "event_sub_kind")
# A new filter must be one or the other, or a cached statement would leave it out.
assert {f.name for f in dataclass_fields(NotificationFilters)} == {
    *_BOUND_LISTS,
    *_BOUND_SCALARS,
    *_SHAPE_FILTERS,
}, "logs/search_shapes.py: add the new filter to _BOUND_LISTS, _BOUND_SCALARS or _SHAPE_FILTERS"
_MARKER_TIME = datetime(1901, 1, 1, tzinfo=UTC)


def _search_shape(
    environment_id: int, filters: NotificationFilters, after: Cursor | None
) -> tuple[tuple, list] | None:
    """The shape of a search (normalized filters) and its atoms, the values it binds; None
    for a search whose text depends on a value in a way the shape does not say (a prefix of
    only the last code point)."""
    atoms: list = [environment_id]
    counts = []
    for name in _BOUND_LISTS:
        values = getattr(filters, name)
        counts.append(len(values))
        atoms.extend(values)
    given = []
    for name in _BOUND_SCALARS:
        value = getattr(filters, name)
        given.append(bool(value))
        if value:
            atoms.append(value)
    if filters.email_prefix:
        end = prefix_end(filters.email_prefix)
        if end is None:
            return None
        atoms.append(end)  # the range's end: a parameter derived from the prefix
    if after is not None:
        atoms.extend((after.created_at, after.id))
    written = tuple(getattr(filters, name) for name in _SHAPE_FILTERS)
    return (tuple(counts), tuple(given), written, after is not None), atoms


def _search_of(shape: tuple, atoms: Sequence) -> tuple[int, NotificationFilters, Cursor | None]:
    """The search of this shape with these atoms: _search_shape's inverse."""
    counts, given, written, has_after = shape
    values = iter(atoms)
    environment_id = next(values)
    lists = {
        name: tuple(itertools.islice(values, count))
        for name, count in zip(_BOUND_LISTS, counts, strict=True)
    }
    scalars = {
        name: next(values) if present else (None if name in _DATES else "")
        for name, present in zip(_BOUND_SCALARS, given, strict=True)
    }
    if scalars["email_prefix"]:
        next(values)  # its end: the search derives it from the prefix
    after = Cursor(next(values), next(values)) if has_after else None
    filters = NotificationFilters(
        **lists, **scalars, **dict(zip(_SHAPE_FILTERS, written, strict=True))
    )
    return environment_id, filters, after


def _markers(shape: tuple, series: int) -> list:
    """Atoms for a search of this shape that no search binds, each different (and different
    in each series): found again among the parameters of the SQL built with them."""
    counts, given, *_, has_after = shape
    number = itertools.count(1)

    def text() -> str:
        return f"\ue000{series}.{next(number)}\ue000"  # private-use characters

    def key() -> uuid.UUID:
        return uuid.UUID(int=(series << 64) + next(number))

    def moment() -> datetime:
        return _MARKER_TIME + timedelta(days=series, microseconds=next(number))

    atoms: list = [-1_000_000 * series - next(number)]  # in any integer column's range
    atoms.extend(key() for _ in range(counts[0]))
    atoms.extend(text() for _ in range(counts[1] + counts[2]))
    prefix = None
    for name, present in zip(_BOUND_SCALARS, given, strict=True):
        if present:
            atoms.append(moment() if name in _DATES else text())
            prefix = atoms[-1] if name == "email_prefix" else prefix
    if prefix is not None:
        atoms.append(prefix_end(prefix))
    if has_after:
        atoms.extend((moment(), key()))
    return atoms


@dataclass(frozen=True)
class _Template:
    sql: str
    # Per parameter: (True, index of the atom) or (False, a constant).
    slots: tuple[tuple[bool, object], ...]

    def bind(self, atoms: Sequence) -> list:
        return [atoms[value] if is_atom else value for is_atom, value in self.slots]


@functools.lru_cache(maxsize=1024)
def _template(build, shape: tuple, args: tuple):
    """What `build` makes for searches of this shape: a _Template, the same non-statement
    answer for any values (e.g. logs.selectors's "no page"), or None when its text depends on
    the values."""
    built = []
    for series in (1, 2):
        markers = _markers(shape, series)
        built.append((build(*_search_of(shape, markers), *args), markers))
    (first, markers), (second, other_markers) = built
    if not isinstance(first, tuple):
        return first if first == second else None
    (sql, params), (other_sql, other_params) = first, second
    if sql != other_sql or len(params) != len(other_params):
        return None
    where = {marker: index for index, marker in enumerate(markers)}
    other_where = {marker: index for index, marker in enumerate(other_markers)}
    slots = []
    for param, other in zip(params, other_params, strict=True):
        index = where.get(param) if isinstance(param, Hashable) else None
        other_index = other_where.get(other) if isinstance(other, Hashable) else None
        if index is not None or other_index is not None:
            if index != other_index:
                return None
            slots.append((True, index))
        elif param == other:
            slots.append((False, param))
        else:
            return None  # a value the ORM transformed: not found, and different
    return _Template(sql, tuple(slots))


def cached_statement(build, environment_id: int, filters: NotificationFilters, after, *args):
    """build(environment_id, filters, after, *args) (a statement, or another answer that
    depends only on the search's shape), its SQL built once per shape (see the module)."""
    search = _search_shape(environment_id, filters, after)
    template = _template(build, search[0], args) if search is not None else None
    if template is None:
        return build(environment_id, filters, after, *args)
    if isinstance(template, _Template):
        return template.sql, template.bind(search[1])
    return template
