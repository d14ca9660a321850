"""Which channels a notification goes out on, and which of them are ignored: the dashboard
flag (ChannelTemplate.enabled), then the user's preference, then the plan's monthly limit,
each an Ignored event with its sub-kind."""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from logs.vocabulary import Channel, EventSubKind
from notifications.dispatch_load import Dispatch
from notifications.models import Outbox, PlanUsage, UserPreference


def channels_chosen(dispatch: Dispatch) -> list[str]:
    """forceChannels when given, else the type's channels and any with inline content."""
    chosen = dispatch.send_request.force_channels
    if chosen is None:
        chosen = set(dispatch.templates) | set(dispatch.send_request.content)
    return [channel for channel in Channel.values if channel in chosen]


# Ignored: the dashboard flag, then the user's preference, then the plan limit.


def ignored_reason(dispatch: Dispatch, channel: str) -> tuple[str, str] | None:
    label = dispatch.channel_label[channel]
    notification = dispatch.notification
    template = dispatch.templates.get(channel)
    if template is not None and not template.enabled:
        return (
            EventSubKind.DASHBOARD_PREFERENCE,
            f"The {label} channel of {notification.notification_type!r} is turned off in the "
            "console.",
        )
    preference = _preference_for(dispatch, channel)
    if preference is not None and preference.delivery == UserPreference.Delivery.OFF:
        return (
            EventSubKind.USER_PREFERENCE,
            f"User {notification.user_id!r} turned {label} off for "
            f"{notification.notification_type!r}.",
        )
    if not _plan_allows(dispatch):
        limit = notification.environment.account.plan_monthly_limit
        return (
            EventSubKind.PLAN_LIMIT,
            f"The account's plan allows {limit} notifications a month and they are used up.",
        )
    return None


def _preference_for(dispatch: Dispatch, channel: str) -> UserPreference | None:
    """The most specific preference that applies: one naming the sub-notification beats one
    for the whole type, and one naming the channel beats one for every channel."""
    sub_id = dispatch.send_request.sub_notification_id
    applicable = [
        preference
        for preference in dispatch.preferences
        if preference.channel in ("", channel) and preference.sub_notification_id in ("", sub_id)
    ]
    if not applicable:
        return None
    return max(applicable, key=lambda p: (bool(p.sub_notification_id), bool(p.channel)))


def _plan_allows(dispatch: Dispatch) -> bool:
    """Count the notification against its account's month once, the first time a channel
    gets this far; a re-run finds it counted (Outbox.plan_counted)."""
    account = dispatch.notification.environment.account
    if account.plan_monthly_limit is None:
        return True
    if dispatch.plan_allowed is None:
        dispatch.plan_allowed = _plan_count(
            account.id, account.plan_monthly_limit, dispatch.outbox.pk
        )
    return dispatch.plan_allowed


def _plan_count(account_id: int, limit: int, outbox_pk: int) -> bool:
    month = timezone.now().date().replace(day=1)
    with transaction.atomic():
        outbox = Outbox.objects.select_for_update().get(pk=outbox_pk)
        if outbox.plan_counted:
            return True
        PlanUsage.objects.bulk_create(
            [PlanUsage(account_id=account_id, month=month)], ignore_conflicts=True
        )
        # One conditional UPDATE: concurrent workers can never push the count past the limit.
        counted = PlanUsage.objects.filter(
            account_id=account_id, month=month, notifications__lt=limit
        ).update(notifications=F("notifications") + 1)
        if counted:
            Outbox.objects.filter(pk=outbox_pk).update(plan_counted=True)
        return bool(counted)
