"""Reads for tenancy. Console querysets are narrowed to the user's accounts here, so every
admin page and later selector shares one rule: superusers see all, staff see the accounts they
are members of, anyone else sees nothing. `roles` narrows further to the accounts where the
user holds one of those roles (MANAGER_ROLES: the accounts whose settings they may change)."""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
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


def member_list_for_user(*, user) -> QuerySet:
    """Console users the user may see: the members of the user's accounts (all for
    superusers)."""
    users = get_user_model().objects.all()
    if not user.is_active:
        return users.none()
    if user.is_superuser:
        return users
    accounts = account_list_for_user(user=user)
    # A subquery, not a join: a member of two of the viewer's accounts is listed once.
    return users.filter(pk__in=Membership.objects.filter(account__in=accounts).values("user_id"))


def account_roles_for_user(*, user) -> dict[int, str]:
    """The user's role in each of their accounts, by account id."""
    return dict(Membership.objects.filter(user=user).values_list("account_id", "role"))


def role_manages(*, manager_role: str | None, member_role: str) -> bool:
    """Whether a member with `manager_role` in an account may create, change or remove a
    membership with `member_role` there: owners manage everyone, admins everyone but owners,
    so an admin can neither remove an owner nor make anyone one."""
    if manager_role == Membership.Role.OWNER:
        return True
    return manager_role == Membership.Role.ADMIN and member_role != Membership.Role.OWNER


def member_is_manageable_by(*, user, member) -> bool:
    """Whether `user` may change or delete the console user `member`: a superuser may; anyone
    else only a non-superuser whose every membership they manage (changing a password or an
    email reaches into every account the member belongs to)."""
    if user.is_superuser:
        return True
    if member.is_superuser or not user.is_active:
        return False
    roles = account_roles_for_user(user=user)
    memberships = list(Membership.objects.filter(user=member).values_list("account_id", "role"))
    return bool(memberships) and all(
        role_manages(manager_role=roles.get(account_id), member_role=role)
        for account_id, role in memberships
    )
