"""Reads of the send pipeline. Each takes the tenant (the environment) and returns a
QuerySet, or one row or None, so no caller can reach another tenant's data by mistake."""

from django.db.models import QuerySet

from accounts.models import Environment
from notifications.models import EndUser, InAppNotification, NotificationType, UserPreference


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
