"""Sensitive values stay hidden from support and viewers.

A merge tag or request field whose key names a secret ("reset_token", "otpCode",
"password") is masked, and so is every occurrence of its value anywhere the console shows
it: the other request fields, the rendered subject, HTML and text, event details and raw
provider payloads. A password-reset link then reads `https://example.com/reset?token=••••••`:
support sees the host and path, never the token.

A secret can also arrive inside a URL under an ordinary name (`"resetUrl":
"https://app.example.com/reset?token=…"`), or only in the rendered content (a catalogue
template that builds the link). So in every string shown, the value of a URL query (or
fragment) parameter whose name means a secret (URL_SECRET_WORDS, plus the environment's own
words: `token`, `reset_token`, `api_key`, `X-Amz-Signature`, `auth`…) is masked too, in plain,
HTML-escaped (`&amp;token=`) and URL-encoded (`%3Ftoken%3D`) spellings, and its value counts as
a secret found in the sources, so its other appearances are masked with it.

Addresses are personal data of another kind: an account may show its viewers (the read-only
role) every email address and phone number masked (`o•••@example.com`, `+44 ••• ••3217`),
and a read API key may be marked masked. `email_masked` and `number_masked` say what such a
reader sees; a Masker built with `addresses_hidden` masks every address in every string it
shows (raw payloads, rendered content, request fields), the notification's own ones in their
URL-encoded spellings too.

Pure functions over plain data; the view decides who sees what (owners and admins may reveal).
"""

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

import phonenumbers

DEFAULT_SENSITIVE_WORDS = ("token", "password", "secret", "code", "otp")
# Query parameter names (any part of them, as key_is_sensitive reads them) that carry secrets
# in URLs: reset and magic-link tokens, OAuth codes, API keys, signed-URL signatures.
URL_SECRET_WORDS = ("token", "code", "key", "secret", "password", "otp", "signature", "auth")
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


# `?name=value`, `&name=value`, `&amp;name=value` (HTML), `#name=value`, `;name=value`: the
# value runs to the next separator, space, quote or angle bracket.
_URL_PARAMETER = re.compile(
    r"(?P<lead>&amp;|[?&#;])(?P<name>[A-Za-z0-9_.\-\[\]%]{1,100})(?P<eq>=)"
    r"(?P<value>[^&#;\s\"'<>]+)"
)
# The same inside a URL-encoded URL (a redirect's `?u=https%3A%2F%2F…%3Ftoken%3D…`).
_ENCODED_URL_PARAMETER = re.compile(
    r"(?P<lead>%3[Ff]|%26|%23)(?P<name>[A-Za-z0-9_.\-]{1,100})(?P<eq>%3[Dd])"
    r"(?P<value>[^%&#\s\"'<>]+)"
)
_URL_PATTERNS = (_URL_PARAMETER, _ENCODED_URL_PARAMETER)


def _may_hold_url_parameters(value: str) -> bool:
    return "=" in value or "%3" in value


def _url_secrets(value: str, words: tuple[str, ...]) -> Iterable[str]:
    """The values of the URL parameters in `value` whose names mean a secret."""
    if not _may_hold_url_parameters(value):
        return
    for pattern in _URL_PATTERNS:
        for match in pattern.finditer(value):
            if key_is_sensitive(unquote(match["name"]), words):
                yield unquote(match["value"])


def _url_parameters_masked(value: str, words: tuple[str, ...]) -> str:
    if not _may_hold_url_parameters(value):
        return value

    def masked(match: re.Match) -> str:
        if not key_is_sensitive(unquote(match["name"]), words):
            return match[0]
        return f"{match['lead']}{match['name']}{match['eq']}{MASK}"

    for pattern in _URL_PATTERNS:
        value = pattern.sub(masked, value)
    return value


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
    # Names of URL parameters whose values are masked wherever they appear.
    url_words: tuple[str, ...] = ()
    # Addresses masked too (see `addresses_hidden`): the known ones' spellings, longest first,
    # each with what the reader sees instead.
    addresses: bool = False
    _address_spellings: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def active(self) -> bool:
        return bool(self.words)

    def text(self, value: str) -> str:
        """`value` with every spelling of every secret (raw, HTML-escaped, URL-encoded)
        replaced by the mask, and the values of secret-named URL parameters too."""
        if not value:
            return value
        for spelling in self._spellings:
            value = value.replace(spelling, MASK)
        if self.url_words:
            value = _url_parameters_masked(value, self.url_words)
        if self.addresses:
            value = _addresses_masked(value, self._address_spellings)
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
        return Masker()  # the environment chose to mask nothing
    url_words = tuple(dict.fromkeys((*URL_SECRET_WORDS, *words)))
    sources = list(sources)
    in_urls = (
        secret
        for source in sources
        for leaf in _leaves(source)
        for secret in _url_secrets(leaf, url_words)
    )
    found = {
        secret
        for secret in (*(s for source in sources for s in _secrets_in(source, words)), *in_urls)
        if len(secret) >= VALUE_LENGTH_MIN
    }
    secrets = tuple(sorted(found, key=len, reverse=True))
    spellings = {
        spelling
        for secret in secrets
        for spelling in (secret, html.escape(secret), quote(secret, safe=""), quote_plus(secret))
    }
    return Masker(words, secrets, tuple(sorted(spellings, key=len, reverse=True)), url_words)


def url_origin(url: str) -> str:
    """What support and viewers see of an endpoint URL a manager configured (a Slack webhook's
    path is its secret): the scheme and host only, `https://hooks.slack.com/…`."""
    parts = urlsplit(str(url))
    if not parts.scheme or not parts.hostname:
        return "…" if url else ""
    return f"{parts.scheme}://{parts.hostname}/…"


# -- addresses ----------------------------------------------------------------------------------

ADDRESS_MASK = "•••"
# Any email address in free text, and its URL-encoded spelling (`alice%40example.com`).
_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9._%+\-]+)(?P<at>@|%40)(?P<domain>[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)"
)
# Any E.164-looking phone number in free text (a plus and 8 to 15 digits).
_NUMBER = re.compile(r"(?<![\w+])\+[1-9][0-9]{7,14}(?![0-9])")


def email_masked(address: str) -> str:
    """`olivia@example.com` → `o•••@example.com`: the first letter and the domain, enough
    to tell two users' addresses apart on a ticket, not enough to write to one."""
    local, at, domain = str(address).rpartition("@")
    if not at:
        return ADDRESS_MASK if address else address
    return f"{local[:1]}{ADDRESS_MASK}@{domain}"


def number_masked(number: str) -> str:
    """`+447700903217` → `+44 ••• ••3217`: the country and the last four digits."""
    text = str(number)
    digits = re.sub(r"[^0-9]", "", text)
    if len(digits) < 6:
        return ADDRESS_MASK if text else text
    try:
        country = str(
            phonenumbers.parse(text if text.startswith("+") else f"+{digits}").country_code
        )
    except phonenumbers.NumberParseException:
        country = digits[:1]
    return f"+{country} {ADDRESS_MASK} ••{digits[-4:]}"


def _addresses_masked(value: str, spellings: tuple[tuple[str, str], ...]) -> str:
    for spelling, shown in spellings:
        value = value.replace(spelling, shown)
    if "@" in value or "%40" in value:
        value = _EMAIL.sub(lambda m: f"{m['local'][:1]}{ADDRESS_MASK}{m['at']}{m['domain']}", value)
    if "+" in value:
        value = _NUMBER.sub(lambda m: number_masked(m[0]), value)
    return value


def addresses_hidden(masker: Masker, *, known: Iterable[str] = ()) -> Masker:
    """`masker` masking every email address and phone number too. `known` (the notification's
    own addresses) are also found in the spellings no pattern reads: URL-encoded (`%2B44…`,
    `alice%40…`) and a number without its plus."""
    pairs: dict[str, str] = {}
    for address in (str(a) for a in known if a):
        if "@" in address:
            shown = email_masked(address)
            pairs.update({address: shown, quote(address, safe=""): quote(shown, safe="")})
        else:
            shown = number_masked(address)
            pairs.update({address: shown, quote(address, safe=""): shown})
            if address.startswith("+") and len(address) > 6:
                pairs[address[1:]] = shown
    spellings = tuple(sorted(pairs.items(), key=lambda pair: len(pair[0]), reverse=True))
    return replace(masker, addresses=True, _address_spellings=spellings)


def addresses_of(*, email: str, number: str, request: Any) -> list[str]:
    """A notification's addresses as stored and as the request spelled them (a US number may
    arrive unformatted, `(415) 555-0100`, and no pattern would find it in the raw request)."""
    spelled = []
    # `to` in the native send API, `user` in NotificationAPI's.
    for key in ("to", "user"):
        to = request.get(key) if isinstance(request, Mapping) else None
        if isinstance(to, Mapping):
            spelled += [to.get("email"), to.get("number")]
    return [str(a) for a in (email, number, *spelled) if a and isinstance(a, str | int)]
