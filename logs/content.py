"""A delivery's rendered content, stored compressed with its template as the dictionary.

Most of a rendered message is its template: the same markup around a few merge-tag values.
Deflate (zlib) takes a preset dictionary: compressed with the template's own text as that
dictionary, a rendered email shrinks to about the size of its merge-tag values, and it
decompresses to exactly the bytes that were sent, whatever the renderer does later (this is
not a re-render: a template edited or a renderer changed after the send cannot change what
the page shows). The email's text part, derived from its HTML by dispatch when the template
has none, goes in the same stream after the HTML: deflate finds its words there.

- The dictionaries (`ContentDictionary`): one row per environment and distinct template
  text, content-addressed (sha256), immutable, written by the first send that uses it
  (INSERT … ON CONFLICT DO NOTHING) and cached in-process both ways. They hold template
  sources only, never a merge-tag value: erasure has nothing to remove from them; they go
  with their environment (tenant deletion).
- The delivery's columns: `content_packed` (raw deflate of HTML, NUL, text: PostgreSQL text
  never holds a NUL) and `content_dictionary_id` (NULL when compressed without one). Both NULL:
  the content is in the `html` and `text` columns, as every row written before this was, and
  as a value that does not get smaller compressed is kept. The subject stays plain (short).

Every reader of a delivery's content goes through `deliveries_content`.
"""

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.db import connection, transaction

from logs.models import ContentDictionary, Delivery

# Raw deflate (no zlib header or checksum: 6 bytes a value; PostgreSQL checks its pages).
_WBITS = -15
_LEVEL = 9
_MEM_LEVEL = 8  # zlib's default
# The separator between the HTML and the text in a packed value: PostgreSQL's text type
# refuses NUL, so neither part can contain it.
_SEPARATOR = "\x00"
# Deflate looks back 32 KB: the end of a longer dictionary is what it can use.
_DICTIONARY_MAX = 32 * 1024
# Dictionaries in each process's caches (a few per template version in use).
_CACHE_MAX = 1024

_ids: dict[tuple[int, bytes], int] = {}  # (environment, sha256) -> id
_dictionaries: dict[tuple[int, int], bytes] = {}  # (environment, id) -> bytes


@dataclass(frozen=True, slots=True)
class DeliveryContent:
    """What a delivery's recipient received: exactly as sent."""

    subject: str
    html: str
    text: str


@lru_cache(maxsize=256)
def template_dictionary(*, html: str = "", text: str = "") -> bytes:
    """The dictionary for content rendered from a template with these HTML and text parts
    (their sources; for an email whose text part dispatch derives from its HTML, the text
    derived from the template's HTML), as packed. b"" for none. Cached: the same templates
    make every send's dictionary."""
    if not html and not text:
        return b""
    return (html + _SEPARATOR + text).encode()[-_DICTIONARY_MAX:]


def content_fields(
    *,
    environment_id: int,
    subject: str,
    html: str,
    text: str,
    dictionary: bytes = b"",
    dictionary_ids: dict[tuple[int, bytes], int] | None = None,
) -> dict[str, object]:
    """The delivery's content columns (logs.event_validation.DELIVERY_FIELDS) for what was sent:
    compressed with `dictionary` (template_dictionary) when that is smaller, else plain.
    `dictionary_ids`: the ids a batch resolved at once (dictionaries_ids), else it is read."""
    packed = content_packed(html=html, text=text, dictionary=dictionary)
    if packed is None:
        return {
            "subject": subject,
            "html": html,
            "text": text,
            "content_packed": None,
            "content_dictionary_id": None,
        }
    return {
        "subject": subject,
        "html": "",
        "text": "",
        "content_packed": packed,
        "content_dictionary_id": _dictionary_id_of(environment_id, dictionary, dictionary_ids),
    }


def _dictionary_id_of(
    environment_id: int, dictionary: bytes, known: dict[tuple[int, bytes], int] | None
) -> int | None:
    if not dictionary:
        return None
    if known is not None and (environment_id, dictionary) in known:
        return known[(environment_id, dictionary)]
    return dictionary_id(environment_id, dictionary)


def content_packed(*, html: str, text: str, dictionary: bytes) -> bytes | None:
    """The HTML and text compressed with `dictionary` (b"": none), or None when that is not
    smaller than the two stored plain (then they are). No database: the seed packs with it."""
    if not html and not text:
        return None
    value = (html + _SEPARATOR + text).encode()
    # With a dictionary, deflate still finds the value's own repeats: never tried without.
    packed = deflate_raw(value, dictionary)
    # A dictionary id costs 4 bytes in the row.
    if len(packed) + (4 if dictionary else 0) >= len(value):
        return None
    return packed


def deliveries_content(deliveries: Iterable[Delivery]) -> list[DeliveryContent]:
    """Each delivery's content exactly as sent, whichever way it is stored. The dictionaries
    not cached yet are read in one query."""
    deliveries = list(deliveries)
    wanted = {
        (d.environment_id, d.content_dictionary_id)
        for d in deliveries
        if d.content_packed is not None and d.content_dictionary_id is not None
    }
    dictionaries = {key: _dictionaries[key] for key in wanted if key in _dictionaries}
    if len(dictionaries) < len(wanted):
        dictionaries.update(_dictionaries_load(wanted - set(dictionaries)))
    return [_content(delivery, dictionaries) for delivery in deliveries]


def _content(delivery: Delivery, dictionaries: dict[tuple[int, int], bytes]) -> DeliveryContent:
    if delivery.content_packed is None:
        return DeliveryContent(delivery.subject, delivery.html, delivery.text)
    dictionary = b""
    if delivery.content_dictionary_id is not None:
        dictionary = dictionaries[(delivery.environment_id, delivery.content_dictionary_id)]
    html, text = inflate_raw(bytes(delivery.content_packed), dictionary).split(_SEPARATOR, 1)
    return DeliveryContent(delivery.subject, html, text)


def deflate_raw(
    value: bytes, dictionary: bytes, *, window_bits: int = _WBITS, mem_level: int = _MEM_LEVEL
) -> bytes:
    """`value` as raw deflate with the preset `dictionary` (b"": none). A smaller window and
    memory level (enough for a value and dictionary of a few kilobytes) make the compressor
    allocate less for each value; inflate_raw reads what any of them wrote."""
    if dictionary:
        compressor = zlib.compressobj(
            _LEVEL, zlib.DEFLATED, window_bits, mem_level, zdict=dictionary
        )
    else:
        compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, window_bits, mem_level)
    return compressor.compress(value) + compressor.flush()


def inflate_raw(packed: bytes, dictionary: bytes) -> str:
    """What deflate_raw packed with `dictionary`, as text."""
    if dictionary:
        decompressor = zlib.decompressobj(_WBITS, zdict=dictionary)
    else:
        decompressor = zlib.decompressobj(_WBITS)
    return (decompressor.decompress(packed) + decompressor.flush()).decode()


def dictionary_id(environment_id: int, dictionary: bytes) -> int:
    """The id of the environment's row for `dictionary`, written now if it has none."""
    return dictionaries_ids([(environment_id, dictionary)])[(environment_id, dictionary)]


def dictionaries_ids(wanted: Iterable[tuple[int, bytes]]) -> dict[tuple[int, bytes], int]:
    """The id of each (environment, dictionary)'s row, written now where there is none: the
    ones not cached in two statements whatever their number (a dispatch batch's templates).
    Race-safe: two first sends of a template insert one row (ON CONFLICT DO NOTHING, then
    read the winner's). Cached once committed (a rolled-back row must not be pointed at)."""
    found: dict[tuple[int, bytes], int] = {}
    missing: dict[tuple[int, bytes], tuple[int, bytes]] = {}  # (environment, sha256) -> wanted
    for environment_id, dictionary in wanted:
        key = (environment_id, _digest(dictionary))
        if key in _ids:
            found[(environment_id, dictionary)] = _ids[key]
        else:
            missing[key] = (environment_id, dictionary)
    if not missing:
        return found
    table = ContentDictionary._meta.db_table
    keys = sorted(missing)  # one order for every writer: no deadlock between two batches
    environments = [environment_id for environment_id, _ in keys]
    digests = [digest for _, digest in keys]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (environment_id, sha256, content, created_at) "  # noqa: S608
            "SELECT environment_id, sha256, content, now() "
            "FROM unnest(%s::bigint[], %s::bytea[], %s::bytea[]) "
            "AS wanted (environment_id, sha256, content) "
            "ON CONFLICT (environment_id, sha256) DO NOTHING RETURNING id, environment_id, sha256",
            [environments, digests, [missing[key][1] for key in keys]],
        )
        rows = {(environment_id, bytes(digest)): id_ for id_, environment_id, digest in cursor}
        if len(rows) < len(keys):  # written by another process first
            cursor.execute(
                f"SELECT id, environment_id, sha256 FROM {table} "  # noqa: S608
                "WHERE (environment_id, sha256) IN "
                "(SELECT * FROM unnest(%s::bigint[], %s::bytea[]))",
                [environments, digests],
            )
            rows = {(environment_id, bytes(digest)): id_ for id_, environment_id, digest in cursor}
    for key, (environment_id, dictionary) in missing.items():
        found[(environment_id, dictionary)] = rows[key]

    def remember() -> None:
        for key, (environment_id, dictionary) in missing.items():
            _remember(_ids, key, rows[key])
            _remember(_dictionaries, (environment_id, rows[key]), dictionary)

    transaction.on_commit(remember)
    return found


@lru_cache(maxsize=256)
def _digest(dictionary: bytes) -> bytes:
    # Cached: template_dictionary gives every send of a template the same bytes object, whose
    # hash Python keeps, so this lookup is constant time.
    return hashlib.sha256(dictionary).digest()


def _dictionaries_load(keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    loaded = {}
    by_environment: dict[int, list[int]] = {}
    for environment_id, id_ in keys:
        by_environment.setdefault(environment_id, []).append(id_)
    for environment_id, ids in sorted(by_environment.items()):
        rows = ContentDictionary.objects.filter(
            environment_id=environment_id, id__in=sorted(ids)
        ).values_list("id", "content")
        for id_, content in rows:
            loaded[(environment_id, id_)] = bytes(content)
            _remember(_dictionaries, (environment_id, id_), bytes(content))
    lost = [key for key in keys if key not in loaded]
    if lost:
        raise LookupError(
            f"Content dictionaries {sorted(lost)} (environment, id) are missing: a delivery "
            "points at a dictionary that was deleted; restore logs_contentdictionary."
        )
    return loaded


def _remember(cache: dict, key, value) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.pop(next(iter(cache)))  # the oldest entry
    cache[key] = value
