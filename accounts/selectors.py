"""Reads for tenancy. Console querysets are narrowed to the user's accounts here, so every
admin page and later selector shares one rule: superusers see all, staff see the accounts they
are members of, anyone else sees nothing."""

from django.db.models import QuerySet

from accounts.models import Account, Environment


def account_list_for_user(*, user) -> QuerySet[Account]:
    if not user.is_active:
        return Account.objects.none()
    if user.is_superuser:
        return Account.objects.all()
    return Account.objects.filter(memberships__user=user)


def environment_list_for_user(*, user) -> QuerySet[Environment]:
    if not user.is_active:
        return Environment.objects.none()
    environments = Environment.objects.select_related("account")
    if user.is_superuser:
        return environments
    return environments.filter(account__memberships__user=user)
