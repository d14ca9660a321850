"""Writes for tenancy: creating environments and API keys. Secrets are returned once, to the
caller that shows them, and only their encrypted form or hash is stored."""

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.crypto import (
    secret_encrypt,
    secret_hash,
    secret_is_current,
    secret_is_readable,
    secret_reencrypt,
)
from accounts.models import Account, ApiKey, Environment


def client_secret_generate() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class CreatedSecret[T]:
    """A freshly created object and its plain secret, which is never readable again."""

    obj: T
    secret: str


def environment_secret_issue(*, environment: Environment, save: bool = True) -> str:
    """Give the environment a new client secret and return it in plain text (once). The old
    secret stops working as soon as this is saved (in other server processes within
    HOT_CACHE_SECONDS: config/hotcache.py)."""
    secret = client_secret_generate()
    environment.client_secret_encrypted = secret_encrypt(secret)
    if save:
        environment.save(update_fields=["client_secret_encrypted"])
    return secret


@transaction.atomic
def environment_create(*, account: Account, name: str) -> CreatedSecret[Environment]:
    environment = Environment(account=account, name=name)
    secret = environment_secret_issue(environment=environment, save=False)
    environment.save()
    return CreatedSecret(environment, secret)


def api_key_issue(*, api_key: ApiKey) -> str:
    """Fill an unsaved key's prefix and hash and return the plain key (once)."""
    unknown = sorted(set(api_key.scopes) - set(ApiKey.Scope.values))
    if unknown or not api_key.scopes:
        raise ValueError(
            f"Unknown scope(s) {', '.join(unknown) or '(none given)'}: "
            f"use one or more of {', '.join(ApiKey.Scope.values)}."
        )
    api_key.scopes = sorted(set(api_key.scopes))
    # The prefix identifies the key (unique, shown in the console); the rest is the secret.
    # token_hex never contains "_", so the prefix is everything before the second "_".
    # 48 random bits: a collision of the unique prefix is out of reach (50% at ~16M keys).
    api_key.prefix = ApiKey.PREFIX + secrets.token_hex(6)
    plain = f"{api_key.prefix}_{secrets.token_urlsafe(32)}"
    api_key.secret_hash = secret_hash(plain)
    return plain


def api_key_create(
    *, environment: Environment, scopes: list[str], name: str = ""
) -> CreatedSecret[ApiKey]:
    api_key = ApiKey(environment=environment, name=name, scopes=list(scopes))
    plain = api_key_issue(api_key=api_key)
    api_key.save()
    return CreatedSecret(api_key, plain)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


@dataclass(frozen=True)
class SecretsReencrypted:
    """What environment_secrets_reencrypt did: counts only, never a secret."""

    reencrypted: int
    already_current: int


class SecretsUnreadable(ValueError):
    pass


# The other secrets an app keeps under SECRETS_ENCRYPTION_KEY (notifications: the Twilio auth
# tokens), by what they are called in rotate_secrets' report ("Twilio auth token"): each app
# registers its re-encrypter in its AppConfig.ready, so accounts imports none of them.
secret_reencrypters: dict[str, Callable[[], SecretsReencrypted]] = {}


def secret_reencrypter_register(*, name: str, reencrypt: Callable[[], SecretsReencrypted]) -> None:
    """Register `reencrypt` (idempotent, all or nothing, like
    environment_secrets_reencrypt) for rotate_secrets, under the name its report uses."""
    secret_reencrypters[name] = reencrypt


@transaction.atomic
def environment_secrets_reencrypt() -> SecretsReencrypted:
    """Re-encrypt every environment's client secret under the newest key of
    SECRETS_ENCRYPTION_KEY, so the older keys can be removed. Idempotent. All or nothing: if a
    secret cannot be read with any configured key, nothing is written."""
    # Locked so a rotation in the console cannot be overwritten by the old secret.
    environments = list(
        Environment.objects.select_for_update().only("pk", "client_secret_encrypted").order_by("pk")
    )
    unreadable = [e.pk for e in environments if not secret_is_readable(e.client_secret_encrypted)]
    if unreadable:
        raise SecretsUnreadable(
            f"No key in SECRETS_ENCRYPTION_KEY decrypts the client secret of environment(s) with "
            f"id {', '.join(map(str, unreadable))}: add the key they were encrypted with (after "
            "the newest) and run again. Nothing was changed."
        )
    stale = [e for e in environments if not secret_is_current(e.client_secret_encrypted)]
    for environment in stale:
        environment.client_secret_encrypted = secret_reencrypt(environment.client_secret_encrypted)
    Environment.objects.bulk_update(stale, ["client_secret_encrypted"], batch_size=500)
    return SecretsReencrypted(
        reencrypted=len(stale), already_current=len(environments) - len(stale)
    )
