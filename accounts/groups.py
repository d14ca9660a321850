"""The console's groups of Django permissions, one per kind of role. Django's permissions say
what a user may do at all; the user's role in each account says where (accounts.admin and
every tenant admin check it), so one group per kind of role serves every account.

- Support (support and viewer roles): view permissions on the logs and what surrounds them.
- Account managers (owner and admin roles): every permission on the tenant apps; the admins
  still refuse what the role does not allow there (an admin makes no owner, a plan limit is
  the install's, another account is never visible).
"""

from django.contrib.auth.models import Group, Permission

from accounts.models import Membership

SUPPORT_GROUP = "Support"
MANAGERS_GROUP = "Account managers"
# Support staff read logs; they change nothing and see no credentials.
SUPPORT_VIEW_APPS = ["logs", "console", "notifications", "webhooks", "alerts", "insights", "stream"]
# What an account's owners and admins manage through the console.
MANAGED_APPS = ["accounts", *SUPPORT_VIEW_APPS]
MANAGER_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


def support_group_sync() -> Group:
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    group.permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=SUPPORT_VIEW_APPS, codename__startswith="view_"
        )
    )
    return group


def managers_group_sync() -> Group:
    group, _ = Group.objects.get_or_create(name=MANAGERS_GROUP)
    group.permissions.set(Permission.objects.filter(content_type__app_label__in=MANAGED_APPS))
    return group


def group_for_role(role: str) -> Group:
    """The group a member with `role` needs. An existing group is left as the operator set
    it; a missing one is made with the rights above."""
    name = MANAGERS_GROUP if role in MANAGER_ROLES else SUPPORT_GROUP
    existing = Group.objects.filter(name=name).first()
    if existing is not None:
        return existing
    return managers_group_sync() if name == MANAGERS_GROUP else support_group_sync()
