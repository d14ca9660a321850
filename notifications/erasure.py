"""The send pipeline's copies of a user's data, erased with the user (logs.erasure): what
NotificationsConfig.ready registers."""

from config.batches import rows_delete
from logs.erasure import ErasedBatch, erasure_eraser_register, raw_delete
from notifications.models import (
    EndUser,
    InAppNotification,
    Outbox,
    SandboxMessage,
    SendIdempotencyKey,
    UserPreference,
)


def _by_tracking(model, batch: ErasedBatch) -> int:
    return raw_delete(batch.naming(model))


def _idempotency_keys(batch: ErasedBatch) -> int:
    if not batch.idempotency_keys:
        return 0
    # Through the (environment, key) unique index; the body's hash goes with its key.
    return raw_delete(batch.naming(SendIdempotencyKey).filter(key__in=batch.idempotency_keys))


def _user_rows(model, order_by: str):
    def erase(*, environment_id: int, user_id: str, batch_size: int) -> int:
        rows = model.objects.filter(environment_id=environment_id, user_id=user_id)
        return rows_delete(rows, order_by=order_by, batch_size=batch_size)

    return erase


def _end_user(*, environment_id: int, user_id: str, batch_size: int) -> int:
    return EndUser.objects.filter(environment_id=environment_id, user_id=user_id).delete()[0]


def erasers_register() -> None:
    erasure_eraser_register(
        table=SandboxMessage._meta.db_table,
        batch=lambda batch: _by_tracking(SandboxMessage, batch),
    )
    erasure_eraser_register(table=SendIdempotencyKey._meta.db_table, batch=_idempotency_keys)
    erasure_eraser_register(
        table=Outbox._meta.db_table, batch=lambda batch: _by_tracking(Outbox, batch)
    )
    erasure_eraser_register(
        table=InAppNotification._meta.db_table,
        batch=lambda batch: _by_tracking(InAppNotification, batch),
        user=_user_rows(InAppNotification, "created_at"),
    )
    # Preferences before the end user they belong to.
    erasure_eraser_register(
        table=UserPreference._meta.db_table, user=_user_rows(UserPreference, "id")
    )
    erasure_eraser_register(table=EndUser._meta.db_table, user=_end_user)
