"""The end-user side: identified users, their preferences and the sub-notifications they
choose among."""

from django.db import transaction
from django.utils import timezone

from accounts.models import Environment
from notifications.models import EndUser, SubNotification, UserPreference
from notifications.services.sends import NotFound, notification_type_required
from notifications.wire import Preference, Recipient


def end_user_identify(*, environment: Environment, recipient: Recipient) -> EndUser:
    """Create or update an end user; fields the body omits keep their value."""
    given = {
        name: value
        for name, value in (
            ("email", recipient.email),
            ("number", recipient.number),
            ("timezone", recipient.timezone),
            ("push_tokens", recipient.push_tokens),
            ("web_push_tokens", recipient.web_push_tokens),
        )
        if value
    }
    user, _ = EndUser.objects.update_or_create(
        environment=environment,
        user_id=recipient.user_id,
        defaults={**given, "updated_at": timezone.now()},
    )
    return user


def user_preferences_set(
    *, environment: Environment, user_id: str, preferences: list[Preference]
) -> None:
    """Set each (type, channel, sub-notification) preference given; others are unchanged."""
    now = timezone.now()
    with transaction.atomic():
        for preference in preferences:
            UserPreference.objects.update_or_create(
                environment=environment,
                user_id=user_id,
                notification_type=preference.notification_type,
                channel=preference.channel,
                sub_notification_id=preference.sub_notification_id,
                defaults={"delivery": preference.delivery, "updated_at": now},
            )


def user_preferences_delete(
    *,
    environment: Environment,
    user_id: str,
    notification_type: str,
    sub_notification_id: str = "",
) -> int:
    """Delete a user's preferences for a type (or one sub-notification of it)."""
    return rows_for_user_delete(
        UserPreference,
        environment=environment,
        user_id=user_id,
        notification_type=notification_type,
        sub_notification_id=sub_notification_id,
    )


def rows_for_user_delete(
    model,
    *,
    environment: Environment,
    user_id: str,
    notification_type: str,
    sub_notification_id: str,
) -> int:
    """Delete a user's rows of a type, or of one sub-notification of it; returns how many."""
    rows = model.objects.filter(
        environment=environment, user_id=user_id, notification_type=notification_type
    )
    if sub_notification_id:
        rows = rows.filter(sub_notification_id=sub_notification_id)
    deleted, _ = rows.delete()
    return deleted


def sub_notification_put(
    *, environment: Environment, notification_type: str, sub_notification_id: str, title: str
) -> SubNotification:
    notification_type_required(environment=environment, key=notification_type)
    sub, _ = SubNotification.objects.update_or_create(
        environment=environment,
        notification_type=notification_type,
        sub_notification_id=sub_notification_id,
        defaults={"title": title},
    )
    return sub


def sub_notification_delete(
    *, environment: Environment, notification_type: str, sub_notification_id: str
) -> None:
    deleted, _ = SubNotification.objects.filter(
        environment=environment,
        notification_type=notification_type,
        sub_notification_id=sub_notification_id,
    ).delete()
    if not deleted:
        raise NotFound(
            f"No sub-notification {sub_notification_id!r} of {notification_type!r} in this "
            "environment."
        )
