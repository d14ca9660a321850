"""Sensitive values stay hidden from support and viewers.

A merge tag or request field whose key names a secret ("reset_token", "otpCode",
"password") is masked, and so is every occurrence of its value anywhere the console shows
it: the other request fields, the rendered subject, HTML and text, event details and raw
provider payloads. A password-reset link then reads `https://example.com/reset?token=••••••`:
support sees the host and path, never the token.

Pure functions over plain data; the view decides who sees what (owners and admins may reveal).
"""

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

DEFAULT_SENSITIVE_WORDS = ("token", "password", "secret", "code", "otp")
MASK = "••••••"
# A secret shorter than this is masked under its own key only: replacing "42" everywhere
# would blank unrelated text and tell support nothing.
VALUE_LENGTH_MIN = 4


def key_is_sensitive(key: str, words: Iterable[str]) -> bool:
    """Whether a field name names a secret: any word appears in it, ignoring case and
    separators ("resetToken", "reset-token" and "RESET_TOKEN" all contain "token").
    Substring matching masks "zip_code" too: hiding too much is the safe mistake."""
    squashed = _squash(key)
    return any(word and _squash(word) in squashed for word in words)


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def _secrets_in(data: Any, words: tuple[str, ...]) -> Iterable[str]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            if key_is_sensitive(key, words):
                yield from _leaves(value)
            else:
                yield from _secrets_in(value, words)
    elif isinstance(data, list | tuple):
        for item in data:
            yield from _secrets_in(item, words)


@dataclass(frozen=True)
class Masker:
    """Masks what `masker_build` found. `Masker()` (nothing to hide) shows everything."""

    words: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # longest first, so a secret containing another goes whole
    _spellings: tuple[str, ...] = field(default=(), repr=False)

    @property
    def active(self) -> bool:
        return bool(self.words)

    def text(self, value: str) -> str:
        """`value` with every spelling of every secret (raw, HTML-escaped, URL-encoded)
        replaced by the mask."""
        if not value or not self._spellings:
            return value
        for spelling in self._spellings:
            value = value.replace(spelling, MASK)
        return value

    def data(self, value: Any) -> Any:
        """A copy of JSON-like `value`: fields named as secrets masked whole, every other
        string with the secrets masked inside it."""
        if isinstance(value, Mapping):
            return {
                key: (MASK if key_is_sensitive(key, self.words) else self.data(item))
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def masker_build(*, sources: Iterable[Any], words: Iterable[str]) -> Masker:
    """A masker for the secrets found in `sources` (merge tags, the original request) under
    keys containing one of `words`."""
    words = tuple(word.strip().lower() for word in words if word.strip())
    if not words:
        return Masker()
    found = {
        secret
        for source in sources
        for secret in _secrets_in(source, words)
        if len(secret) >= VALUE_LENGTH_MIN
    }
    secrets = tuple(sorted(found, key=len, reverse=True))
    spellings = {
        spelling
        for secret in secrets
        for spelling in (secret, html.escape(secret), quote(secret, safe=""), quote_plus(secret))
    }
    return Masker(words, secrets, tuple(sorted(spellings, key=len, reverse=True)))
