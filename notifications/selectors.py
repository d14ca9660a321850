"""Reads of the send pipeline. Each takes the tenant (the environment) and returns a
QuerySet, or one row or None, so no caller can reach another tenant's data by mistake."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import Environment
from notifications.models import (
    EndUser,
    InAppNotification,
    NotificationType,
    TwilioCredentials,
    UserPreference,
)


def notification_types(*, environment: Environment) -> QuerySet[NotificationType]:
    return NotificationType.objects.filter(environment=environment)


def notification_type_get(*, environment: Environment, key: str) -> NotificationType | None:
    return notification_types(environment=environment).filter(key=key).first()


def end_user_get(*, environment: Environment, user_id: str) -> EndUser | None:
    return EndUser.objects.filter(environment=environment, user_id=user_id).first()


def in_app_feed(*, environment: Environment, user_id: str) -> QuerySet[InAppNotification]:
    """The user's in-app notifications not archived, newest first."""
    return InAppNotification.objects.filter(
        environment=environment, user_id=user_id, archived_at__isnull=True
    ).order_by("-created_at", "-id")


def user_preferences(
    *, environment: Environment, user_id: str, notification_type: str
) -> QuerySet[UserPreference]:
    return UserPreference.objects.filter(
        environment=environment, user_id=user_id, notification_type=notification_type
    )


def user_preferences_of(
    keys: Iterable[tuple[int, str, str]],
) -> dict[tuple[int, str, str], list[UserPreference]]:
    """The preferences of several (environment id, user id, notification type) at once (a
    dispatch batch's), in one query, by that key: each key gets only its own tenant's."""
    keys = set(keys)
    found: dict[tuple[int, str, str], list[UserPreference]] = {}
    if not keys:
        return found
    environments, users, types = (set(column) for column in zip(*keys, strict=True))
    for preference in UserPreference.objects.filter(
        environment_id__in=environments, user_id__in=users, notification_type__in=types
    ):
        key = (preference.environment_id, preference.user_id, preference.notification_type)
        if key in keys:
            found.setdefault(key, []).append(preference)
    return found


class TwilioCredentialsUnreadable(ValueError):
    pass


@dataclass(frozen=True)
class TwilioAccount:
    """The Twilio account an environment uses: what it sends with and what its callbacks
    are verified with. Never log it: it holds the auth token."""

    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str
    # True when the environment's own credentials (set in the console) are used.
    own: bool


def twilio_account_for(*, environment: Environment | None) -> TwilioAccount:
    """The environment's own Twilio account when the console has its SID and token, else the
    install's (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN); its own from number, else
    TWILIO_FROM_NUMBER. None: the install's (a callback URL that names no environment).
    Raises TwilioCredentialsUnreadable when no key of SECRETS_ENCRYPTION_KEY decrypts the
    stored token. Load the environment with select_related("twilio_credentials") to save a
    query."""
    try:
        credentials = environment.twilio_credentials if environment else None
    except TwilioCredentials.DoesNotExist:
        credentials = None
    own = credentials is not None and credentials.has_auth_token
    from_number = (credentials.from_number if credentials else "") or settings.TWILIO_FROM_NUMBER
    if not own:
        return TwilioAccount(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            from_number=from_number,
            own=False,
        )
    try:
        auth_token = credentials.auth_token_decrypted()
    except ValueError:
        raise TwilioCredentialsUnreadable(
            f"The Twilio auth token of environment {environment.client_id} cannot be decrypted: "
            "add the key it was encrypted with to SECRETS_ENCRYPTION_KEY, or set the token "
            "again in the console (Twilio credentials)."
        ) from None
    return TwilioAccount(
        account_sid=credentials.account_sid,
        auth_token=auth_token,
        from_number=from_number,
        own=True,
    )
