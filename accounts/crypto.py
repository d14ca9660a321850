"""Encryption at rest for secrets we must be able to read back (environment client secrets,
which user-hash authentication recomputes). Keys come from SECRETS_ENCRYPTION_KEY; the first
encrypts, all decrypt, so keys can be rotated."""

import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in settings.SECRETS_ENCRYPTION_KEYS])


def secret_encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError(
            "Cannot decrypt a stored secret: SECRETS_ENCRYPTION_KEY does not include the key "
            "it was encrypted with."
        ) from exc


def secret_hash(secret: str) -> str:
    """Digest for high-entropy generated secrets (API keys): SHA-256 is enough, since the
    secrets are random 32-byte values, not passwords."""
    return hashlib.sha256(secret.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
