"""Upkeep of the send pipeline: the nightly purge of its unpartitioned tables past the
log's retention, and the environments' Twilio auth tokens, stored encrypted (set, and
re-encrypted by rotate_secrets)."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.crypto import secret_encrypt, secret_is_current, secret_is_readable, secret_reencrypt
from accounts.services import SecretsReencrypted, SecretsUnreadable
from config.batches import rows_delete
from notifications.models import (
    InAppNotification,
    SandboxMessage,
    SendIdempotencyKey,
    TwilioCredentials,
)


def send_tables_purge(*, retention_days: int, now: datetime | None = None) -> dict[str, int]:
    """Rows of the pipeline's unpartitioned tables that point at logs past retention:
    idempotency keys, in-app feed items and the sandbox's record. Returns what went."""
    cutoff = (now or timezone.now()) - timedelta(days=retention_days)
    purged = {}
    for model, column in (
        (SendIdempotencyKey, "created_at"),
        (InAppNotification, "notification_created_at"),
        (SandboxMessage, "created_at"),
    ):
        # Millions of rows a night at volume: in short batches (config/batches.py), each an
        # index range scan on `column`.
        purged[model._meta.model_name] = rows_delete(
            model.objects.filter(**{f"{column}__lt": cutoff}), order_by=column
        )
    return purged


def twilio_auth_token_set(
    *, credentials: TwilioCredentials, auth_token: str, save: bool = True
) -> None:
    """Store an environment's Twilio auth token encrypted ("" clears it: the environment's
    callbacks are then verified with the install's TWILIO_AUTH_TOKEN again). The plain token
    is never kept, returned or logged. save=False leaves the write to the caller (the console
    form sets it before the model's own validation, which pairs it with the account SID)."""
    credentials.auth_token_encrypted = secret_encrypt(auth_token) if auth_token else ""
    credentials.updated_at = timezone.now()
    if save:
        credentials.save(update_fields=["auth_token_encrypted", "updated_at"])


@transaction.atomic
def twilio_auth_tokens_reencrypt() -> SecretsReencrypted:
    """Re-encrypt every environment's Twilio auth token under the newest key of
    SECRETS_ENCRYPTION_KEY (rotate_secrets runs it with the client secrets). Idempotent; all
    or nothing: if a token cannot be read with any configured key, nothing is written."""
    # Locked so a token replaced in the console meanwhile is not overwritten by the old one.
    stored = list(
        TwilioCredentials.objects.select_for_update()
        .exclude(auth_token_encrypted="")
        .only("pk", "environment_id", "auth_token_encrypted")
        .order_by("pk")
    )
    unreadable = [
        credentials.environment_id
        for credentials in stored
        if not secret_is_readable(credentials.auth_token_encrypted)
    ]
    if unreadable:
        raise SecretsUnreadable(
            "No key in SECRETS_ENCRYPTION_KEY decrypts the Twilio auth token of environment(s) "
            f"with id {', '.join(map(str, unreadable))}: add the key they were encrypted with "
            "(after the newest), or set those tokens again in the console, and run again. "
            "Nothing was changed."
        )
    stale = [c for c in stored if not secret_is_current(c.auth_token_encrypted)]
    for credentials in stale:
        credentials.auth_token_encrypted = secret_reencrypt(credentials.auth_token_encrypted)
    TwilioCredentials.objects.bulk_update(stale, ["auth_token_encrypted"], batch_size=500)
    return SecretsReencrypted(reencrypted=len(stale), already_current=len(stored) - len(stale))
