"""Page tokens handed to API callers: the selector's Cursor, signed.

A cursor names a position in the environment's log; signing it (with the environment in the
salt) means a hand-edited or truncated token, or one from another environment, is refused
with a 400 instead of silently starting somewhere else.
"""

from django.core import signing

from logs.search_filters import Cursor

_TAMPERED = (
    "The page token is not valid: pass back the cursor (nextToken) of the previous page "
    "unchanged, or leave it out for the first page."
)


def _signer(environment_id: int) -> signing.Signer:
    return signing.Signer(salt=f"logs.api.cursor:{environment_id}")


def cursor_token(*, environment_id: int, cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    return _signer(environment_id).sign(cursor.encode())


def cursor_from_token(*, environment_id: int, token: str) -> Cursor:
    """The cursor a token names; ValueError when it was altered or is not ours."""
    try:
        return Cursor.decode(_signer(environment_id).unsign(token))
    except (signing.BadSignature, ValueError):
        raise ValueError(_TAMPERED) from None
