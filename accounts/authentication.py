"""The one place that maps a request's credentials to an environment.

Accepted, in the `Authorization` header:

- `Basic base64(clientId:clientSecret)`: NotificationAPI's server SDKs; all scopes.
- `Basic base64(clientId:apiKey)`: an extra API key of that environment; the key's scopes.
- `Bearer apiKey`: the same key alone (the key names its environment).
- `Basic base64(clientId:userId:H)`: NotificationAPI's user-hash form, only where the caller
  allows it. The SDKs disagree on H (Python: base64(SHA-256(secret + userId)); Node, .NET,
  Go: base64(HMAC-SHA256(secret, userId))), so both are accepted.

Anything else raises `AuthenticationFailed` with a message that says what to send; every API
answers it with 401.
"""

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.crypto import constant_time_equal, secret_hash
from accounts.models import ApiKey, Environment
from config.hotcache import HotCache

ALL_SCOPES = frozenset(ApiKey.Scope.values)
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_EXPECTED = (
    "Send 'Authorization: Basic base64(clientId:clientSecret)' (as NotificationAPI's SDKs do) "
    "or 'Authorization: Bearer <api key>'."
)
# A client secret and an API key are shown once, when made, and never again (stored hashed or
# encrypted): a refusal points where a new one is made, never at a page that cannot show it.
_INVALID = (
    "Invalid credentials: the client id and secret do not match an environment. The client id "
    "is listed in the console (Accounts and credentials > Environments); the secret was shown "
    "once, when the environment was made or its secret rotated, and cannot be shown again. "
    "Lost it? Select the environment there and run the action 'Rotate client secret' (the "
    "old secret stops working), or make a new environment with manage.py create_environment."
)
_URL_MISMATCH = "The credentials are for another environment than the client id in the URL."


def _invalid_api_key(environment: Environment | None) -> str:
    where = "this install" if environment is None else f"client id {environment.client_id}"
    return (
        f"Invalid API key: it matches no API key of {where}. An API key is shown once, when it "
        "is made (console: Accounts and credentials > API keys > Add, or manage.py "
        "create_api_key), and cannot be shown again: make a new one if you lost it."
    )


# Environments by client id (with their secret's hash) and API keys by prefix, for
# HOT_CACHE_SECONDS; cleared in this process on any change (accounts.apps), see hotcache.
credentials_cache = HotCache("credentials")


@dataclass(frozen=True)
class _KnownEnvironment:
    environment: Environment
    secret_hash: str


def _environment_known(client_id: str) -> _KnownEnvironment | None:
    def load():
        environment = (
            Environment.objects.select_related("account").filter(client_id=client_id).first()
        )
        if environment is None:
            return None
        return _KnownEnvironment(environment, secret_hash(environment.client_secret()))

    return credentials_cache.get(("environment", client_id), load)


class AuthenticationFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Credentials:
    """Who is calling: an environment, with the scopes the credential grants."""

    environment: Environment
    scopes: frozenset[str] = ALL_SCOPES
    api_key: ApiKey | None = None
    # Set only for the user-hash form: the end user the request is about.
    user_id: str | None = field(default=None)

    # Lets DRF's IsAuthenticated accept a Credentials object as request.user.
    is_authenticated = True

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def _decode_basic(token: str) -> str:
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthenticationFailed(
            f"Malformed Authorization header: the Basic credentials are not base64. {_EXPECTED}"
        ) from None
    if "\x00" in decoded:  # PostgreSQL refuses NUL in text: it could never match anyway
        raise AuthenticationFailed(f"Malformed Authorization header: a NUL character. {_EXPECTED}")
    return decoded


def _user_hashes(secret: str, user_id: str) -> tuple[str, str]:
    plain = hashlib.sha256((secret + user_id).encode()).digest()
    keyed = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).digest()
    return base64.b64encode(plain).decode(), base64.b64encode(keyed).decode()


def _api_key_credentials(plain: str, environment: Environment | None) -> Credentials:
    prefix = plain.split("_", 2)
    if len(prefix) < 3:
        raise AuthenticationFailed(_invalid_api_key(environment))
    key_prefix = f"{prefix[0]}_{prefix[1]}"
    api_key = credentials_cache.get(
        ("api_key", key_prefix),
        lambda: (
            ApiKey.objects.select_related("environment__account").filter(prefix=key_prefix).first()
        ),
    )
    if environment is not None and api_key is not None and api_key.environment_id != environment.id:
        api_key = None
    if api_key is None or not constant_time_equal(api_key.secret_hash, secret_hash(plain)):
        raise AuthenticationFailed(_invalid_api_key(environment))
    if api_key.revoked_at is not None:
        raise AuthenticationFailed(
            f"This API key ({api_key.prefix}…) was revoked on "
            f"{api_key.revoked_at:%Y-%m-%d %H:%M} UTC. Create a new key in the console."
        )
    now = timezone.now()
    if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now  # the cached copy too: written once a minute, not per hit
    return Credentials(
        environment=api_key.environment, scopes=frozenset(api_key.scopes), api_key=api_key
    )


def credentials_from_request(
    request, *, client_id: str | None = None, allow_user_hash: bool = False
) -> Credentials:
    """Authenticate `request` (a Django or DRF request).

    `client_id` is the one in the URL path, for the NotificationAPI-compatible endpoints;
    credentials for another environment are refused. `allow_user_hash` admits the user-hash
    form, used by the endpoints an end user's browser or app may call.
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        raise AuthenticationFailed(f"Missing Authorization header. {_EXPECTED}")
    scheme, _, token = header.strip().partition(" ")
    scheme = scheme.lower()
    if "\x00" in header:
        raise AuthenticationFailed(f"Malformed Authorization header: a NUL character. {_EXPECTED}")
    if scheme == "bearer" and token.strip():
        credentials = _api_key_credentials(token.strip(), None)
        if client_id is not None and credentials.environment.client_id != client_id:
            raise AuthenticationFailed(_URL_MISMATCH)
        return credentials
    if scheme != "basic" or not token.strip():
        raise AuthenticationFailed(f"Malformed Authorization header. {_EXPECTED}")

    decoded = _decode_basic(token)
    header_client_id, sep, rest = decoded.partition(":")
    if not sep or not header_client_id or not rest:
        raise AuthenticationFailed(
            f"Malformed Authorization header: the Basic credentials must be "
            f"'clientId:clientSecret'. {_EXPECTED}"
        )
    if client_id is not None and header_client_id != client_id:
        raise AuthenticationFailed(_URL_MISMATCH)
    known = _environment_known(header_client_id)
    if known is None:
        raise AuthenticationFailed(_INVALID)
    environment = known.environment

    # The user-hash form: clientId up to the first ':', H after the last (base64 has no ':'),
    # the user id in between (it may itself contain ':').
    if allow_user_hash and ":" in rest:
        user_id, _, given_hash = rest.rpartition(":")
        if not user_id or not given_hash:
            raise AuthenticationFailed(
                "Malformed Authorization header: the user-hash form is "
                "base64(clientId:userId:H) with a non-empty userId and H."
            )
        secret = environment.client_secret()
        if any(constant_time_equal(given_hash, h) for h in _user_hashes(secret, user_id)):
            # The hash lives in an end user's browser or app: it proves who the user is and
            # grants no scope; endpoints that accept it check user_id instead.
            return Credentials(environment=environment, scopes=frozenset(), user_id=user_id)
        raise AuthenticationFailed(
            "Invalid user hash: H must be base64(HMAC-SHA256(clientSecret, userId)) or "
            "base64(SHA-256(clientSecret + userId))."
        )

    if rest.startswith(ApiKey.PREFIX):
        return _api_key_credentials(rest, environment)
    if not constant_time_equal(secret_hash(rest), known.secret_hash):
        raise AuthenticationFailed(_INVALID)
    return Credentials(environment=environment)


class EnvironmentAuthentication(authentication.BaseAuthentication):
    """DRF adapter: request.user and request.auth are both the Credentials."""

    def authenticate(self, request):
        client_id = request.parser_context["kwargs"].get("client_id")
        try:
            credentials = credentials_from_request(request, client_id=client_id)
        except AuthenticationFailed as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None
        return credentials, credentials

    def authenticate_header(self, request):
        # A WWW-Authenticate header makes DRF answer 401 (not 403) to a missing credential.
        return 'Basic realm="notification-log"'


def scope_required(scope: str):
    """A DRF permission class that admits credentials carrying `scope`."""

    class HasScope:
        message = f"This credential lacks the '{scope}' scope: use one that has it."

        def has_permission(self, request, view):
            return isinstance(request.auth, Credentials) and request.auth.has_scope(scope)

        def has_object_permission(self, request, view, obj):
            return True

    HasScope.__name__ = f"HasScope_{scope}"
    return HasScope
