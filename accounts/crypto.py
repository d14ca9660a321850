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


def _newest_fernet() -> Fernet:
    # Not cached: used only by rotation, and it must follow the settings as _fernet does.
    return Fernet(settings.SECRETS_ENCRYPTION_KEYS[0].encode())


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


def _decrypts(fernet: Fernet | MultiFernet, token: str) -> bool:
    try:
        fernet.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def secret_is_readable(token: str) -> bool:
    """Some configured key decrypts it."""
    return _decrypts(_fernet(), token)


def secret_is_current(token: str) -> bool:
    """The newest key (the first of SECRETS_ENCRYPTION_KEY) decrypts it."""
    return _decrypts(_newest_fernet(), token)


def secret_reencrypt(token: str) -> str:
    """The same secret encrypted under the newest key (any configured key may read `token`)."""
    return _fernet().rotate(token.encode()).decode()


def secret_hash(secret: str) -> str:
    """Digest for high-entropy generated secrets (API keys): SHA-256 is enough, since the
    secrets are random 32-byte values, not passwords."""
    return hashlib.sha256(secret.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
