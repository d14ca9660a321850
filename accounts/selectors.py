"""Reads for tenancy. Console querysets are narrowed to the user's accounts here, so every
admin page and later selector shares one rule: superusers see all, staff see the accounts they
are members of, anyone else sees nothing. `roles` narrows further to the accounts where the
user holds one of those roles (MANAGER_ROLES: the accounts whose settings they may change)."""

from collections.abc import Iterable

from django.db.models import QuerySet

from accounts.models import Account, Environment, Membership

# Owners and admins change an account's environments, keys, catalogue and members; support
# and viewers only read.
MANAGER_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


def _membership(prefix: str, user, roles: Iterable[str] | None) -> dict:
    # One filter() call, so user and role apply to the same membership row.
    lookups = {f"{prefix}memberships__user": user}
    if roles is not None:
        lookups[f"{prefix}memberships__role__in"] = list(roles)
    return lookups


def account_list_for_user(*, user, roles: Iterable[str] | None = None) -> QuerySet[Account]:
    if not user.is_active:
        return Account.objects.none()
    if user.is_superuser:
        return Account.objects.all()
    return Account.objects.filter(**_membership("", user, roles))


def environment_list_for_user(*, user, roles: Iterable[str] | None = None) -> QuerySet[Environment]:
    if not user.is_active:
        return Environment.objects.none()
    environments = Environment.objects.select_related("account")
    if user.is_superuser:
        return environments
    return environments.filter(**_membership("account__", user, roles))
