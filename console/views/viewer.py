"""Who is looking: the console user, their environments and their role in each account
(Viewer, viewer_for), what that role allows, and the console's own URLs."""

from dataclasses import dataclass
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.models import Environment, Membership
from accounts.selectors import MANAGER_ROLES, account_roles_for_user, environment_list_for_user
from config.times import viewer_zone
from logs.masking import email_masked, number_masked
from logs.models import Notification

# Support and above export and resend; viewers only read.
EXPORT_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.SUPPORT)
RESEND_ROLES = EXPORT_ROLES


@dataclass
class Viewer:
    """The console user, their environments and their role in each account."""

    user: object
    environments: list[Environment]
    roles: dict[int, str]
    zone: ZoneInfo

    def role(self, environment: Environment) -> str | None:
        if self.user.is_superuser:
            return Membership.Role.OWNER
        return self.roles.get(environment.account_id)

    def environment(self, environment_id: int) -> Environment:
        return next(e for e in self.environments if e.id == environment_id)

    def may_export(self, environment: Environment) -> bool:
        return self.role(environment) in EXPORT_ROLES

    def may_resend(self, environment: Environment) -> bool:
        return self.role(environment) in RESEND_ROLES

    def may_reveal(self, environment: Environment) -> bool:
        return self.role(environment) in MANAGER_ROLES

    def may_erase(self, environment: Environment) -> bool:
        return self.role(environment) in MANAGER_ROLES

    def sees_addresses_masked(self, environment: Environment) -> bool:
        """A viewer of an account that masks addresses for its viewers."""
        return (
            self.role(environment) == Membership.Role.VIEWER
            and environment.account.viewer_addresses == "masked"
        )


def viewer_for(request, admin) -> Viewer:
    if not admin.has_view_permission(request):
        raise PermissionDenied
    return Viewer(
        user=request.user,
        # Only what the console shows: never the environment's encrypted secret.
        environments=list(
            environment_list_for_user(user=request.user).only(
                "id", "name", "account_id", "account__name", "account__viewer_addresses"
            )
        ),
        roles=account_roles_for_user(user=request.user),
        zone=viewer_zone(request),
    )


def console_url(name: str, *args, params: dict | None = None) -> str:
    url = reverse(f"admin:logs_notification_{name}", args=args)
    return f"{url}?{urlencode(params)}" if params else url


def page_url(name: str, tracking_id, environment_id: int) -> str:
    """A URL of a notification's pages (change, events, reveal, resend) naming its
    environment, so the page reads it from that environment alone (queries.
    notification_for_viewer: one shard on Citus)."""
    return console_url(name, tracking_id, params={"environment": environment_id})


def addresses_masked(notification: Notification) -> None:
    """Mask the notification's own addresses in memory (it is never saved again), so every
    template that shows them shows them masked."""
    notification.email = email_masked(notification.email) if notification.email else ""
    notification.number = number_masked(notification.number) if notification.number else ""
