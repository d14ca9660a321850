"""Tenant scoping fails closed (issue 6, item 6): an admin that forgets its tenant path stops
start-up; Django's user admin shows only the members of the viewer's accounts; an account's
admins may not create, change or remove its owners."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.urls import reverse

from accounts.admin.bases import TenantScopedAdmin
from accounts.models import ApiKey, Environment, Invitation, Membership
from tests.factories import AccountFactory, EnvironmentFactory, MembershipFactory, UserFactory

User = get_user_model()
Role = Membership.Role


# TenantScopedAdmin refuses to be built without a tenant path


def test_an_admin_naming_no_tenant_path_stops_start_up():
    class ForgetfulAdmin(TenantScopedAdmin):
        pass

    with pytest.raises(ImproperlyConfigured) as excinfo:
        ForgetfulAdmin(ApiKey, admin.AdminSite())

    message = str(excinfo.value)
    assert "ForgetfulAdmin (admin of accounts.ApiKey)" in message
    assert "environment_path" in message and "not_tenant_data" in message


def test_an_admin_is_refused_when_its_path_leads_elsewhere():
    class WrongPathAdmin(TenantScopedAdmin):
        account_path = "environment"  # an Environment, not an Account

    class TypoAdmin(TenantScopedAdmin):
        environment_path = "enviroment"

    with pytest.raises(ImproperlyConfigured, match="must lead from ApiKey to Account"):
        WrongPathAdmin(ApiKey, admin.AdminSite())
    with pytest.raises(ImproperlyConfigured, match="enviroment"):
        TypoAdmin(ApiKey, admin.AdminSite())


def test_an_admin_naming_both_paths_is_refused():
    class BothAdmin(TenantScopedAdmin):
        environment_path = "environment"
        account_path = "environment__account"

    with pytest.raises(ImproperlyConfigured, match="exactly one"):
        BothAdmin(ApiKey, admin.AdminSite())


@pytest.mark.django_db
def test_an_explicit_opt_out_lists_every_row_and_a_scoped_admin_only_the_users():
    class NotTenantAdmin(TenantScopedAdmin):
        not_tenant_data = True  # in this test only: the opt-out itself is what is tested

    class ScopedAdmin(TenantScopedAdmin):
        account_path = "account"

    mine, theirs = EnvironmentFactory(), EnvironmentFactory()
    viewer = UserFactory()
    MembershipFactory(user=viewer, account=mine.account)
    request = RequestFactory().get("/")
    request.user = viewer

    everything = NotTenantAdmin(Environment, admin.AdminSite()).get_queryset(request)
    scoped = ScopedAdmin(Environment, admin.AdminSite()).get_queryset(request)

    assert set(everything) == {mine, theirs}
    assert set(scoped) == {mine}


def test_every_registered_tenant_admin_names_its_path():
    # Built at start-up, so reaching this test means none failed; and none opted out silently.
    tenant_admins = [a for a in admin.site._registry.values() if isinstance(a, TenantScopedAdmin)]

    assert tenant_admins
    assert all(a.environment_path or a.account_path for a in tenant_admins)


# Django's user admin, scoped to the viewer's accounts

USER_PERMISSIONS = ["view_user", "change_user", "delete_user", "add_user"]
MEMBERSHIP_PERMISSIONS = ["view_membership", "change_membership", "add_membership",
                          "delete_membership"]  # fmt: skip


def staff_of(account, role: str, username: str | None = None):
    """A staff member of `account` with `role`, allowed by Django's permissions to manage
    users and memberships: what stops them is the scoping under test."""
    user = UserFactory(**({"username": username} if username else {}))
    MembershipFactory(user=user, account=account, role=role)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=USER_PERMISSIONS + MEMBERSHIP_PERMISSIONS)
    )
    return user


def user_change(pk: int) -> str:
    return reverse("admin:auth_user_change", args=[pk])


def user_form(user, **changes) -> dict:
    return {
        "username": user.username,
        "email": user.email,
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        **changes,
    }


@pytest.mark.django_db
def test_staff_see_only_members_of_their_accounts(client, django_assert_max_num_queries):
    alpha, bravo = AccountFactory(name="Alpha"), AccountFactory(name="Bravo")
    viewer = staff_of(alpha, Role.ADMIN)
    for n in range(3):
        MembershipFactory(account=alpha, user=UserFactory(username=f"alpha-member-{n}"))
    MembershipFactory(account=bravo, user=UserFactory(username="bravo-member"))
    UserFactory(username="in-no-account")
    client.force_login(viewer)

    # 9: an admin's page asks once whether they own or administer an account (the access
    # audit's menu entry, audit/admin.py).
    with django_assert_max_num_queries(9):
        response = client.get(reverse("admin:auth_user_changelist"))

    content = response.content.decode()
    assert response.status_code == 200
    assert "alpha-member-0" in content and "alpha-member-2" in content
    assert "bravo-member" not in content
    assert "in-no-account" not in content


@pytest.mark.django_db
def test_another_tenants_user_answers_404_like_a_missing_one(client):
    alpha, bravo = AccountFactory(), AccountFactory()
    stranger = MembershipFactory(account=bravo).user
    client.force_login(staff_of(alpha, Role.OWNER))

    pages = [
        client.get(user_change(stranger.pk)),
        client.post(user_change(stranger.pk), user_form(stranger, email="x@evil.example")),
        client.get(reverse("admin:auth_user_password_change", args=[stranger.pk])),
        client.get(reverse("admin:auth_user_delete", args=[stranger.pk])),
        client.get(user_change(10**9)),
    ]

    assert [p.status_code for p in pages] == [404] * 5
    stranger.refresh_from_db()
    assert stranger.email != "x@evil.example"


@pytest.mark.django_db
def test_superuser_sees_every_user(client):
    lonely = UserFactory(username="in-no-account")
    client.force_login(UserFactory(is_superuser=True))

    assert client.get(user_change(lonely.pk)).status_code == 200


@pytest.mark.django_db
def test_an_account_admin_changes_a_support_member_but_not_an_owner(client):
    alpha = AccountFactory()
    support = MembershipFactory(account=alpha, role=Role.SUPPORT).user
    owner = MembershipFactory(account=alpha, role=Role.OWNER).user
    client.force_login(staff_of(alpha, Role.ADMIN))

    changed = client.post(user_change(support.pk), user_form(support, email="new@alpha.example"))
    refused = client.post(user_change(owner.pk), user_form(owner, email="new@alpha.example"))
    delete_owner = client.post(reverse("admin:auth_user_delete", args=[owner.pk]), {"post": "yes"})

    assert changed.status_code == 302
    assert refused.status_code == 403
    assert delete_owner.status_code == 403
    support.refresh_from_db(), owner.refresh_from_db()
    assert support.email == "new@alpha.example"
    assert owner.email != "new@alpha.example"
    assert User.objects.filter(pk=owner.pk).exists()


@pytest.mark.django_db
def test_a_member_of_another_account_too_is_changed_only_by_who_manages_both(client):
    alpha, bravo = AccountFactory(), AccountFactory()
    shared = MembershipFactory(account=alpha, role=Role.SUPPORT).user
    MembershipFactory(account=bravo, user=shared, role=Role.SUPPORT)
    email = shared.email
    client.force_login(staff_of(alpha, Role.OWNER))

    # A new password or email would reach into Bravo, which this owner does not manage.
    response = client.post(user_change(shared.pk), user_form(shared, email="taken@over.example"))

    assert response.status_code == 403
    shared.refresh_from_db()
    assert shared.email == email


@pytest.mark.django_db
def test_an_owner_of_both_accounts_changes_a_member_of_both(client):
    alpha, bravo = AccountFactory(), AccountFactory()
    shared = MembershipFactory(account=alpha, role=Role.SUPPORT).user
    MembershipFactory(account=bravo, user=shared, role=Role.SUPPORT)
    owner_of_both = staff_of(alpha, Role.OWNER)
    MembershipFactory(account=bravo, user=owner_of_both, role=Role.OWNER)
    client.force_login(owner_of_both)

    response = client.post(user_change(shared.pk), user_form(shared, email="new@both.example"))

    assert response.status_code == 302
    shared.refresh_from_db()
    assert shared.email == "new@both.example"


@pytest.mark.django_db
def test_staff_cannot_make_themselves_superuser_or_create_users(client):
    alpha = AccountFactory()
    owner = staff_of(alpha, Role.OWNER)
    client.force_login(owner)

    client.post(user_change(owner.pk), user_form(owner, is_superuser="on"))
    add = client.get(reverse("admin:auth_user_add"))

    owner.refresh_from_db()
    assert not owner.is_superuser
    assert add.status_code == 403


# Owners' memberships are the owners' to manage


def membership_form(membership, **changes) -> dict:
    return {"user": membership.user_id, "account": membership.account_id,
            "role": membership.role, **changes}  # fmt: skip


@pytest.mark.django_db
def test_an_account_admin_may_not_invite_an_owner(client):
    alpha = AccountFactory()
    client.force_login(staff_of(alpha, Role.ADMIN))

    response = client.post(
        reverse("admin:accounts_invitation_add"),
        {"email": "newcomer@alpha.example", "account": alpha.pk, "role": Role.OWNER},
    )

    assert response.status_code == 200
    assert f"Only an owner of {alpha} can make someone an owner" in response.content.decode()
    assert not Invitation.objects.filter(email="newcomer@alpha.example").exists()


@pytest.mark.django_db
def test_an_account_admin_may_not_promote_a_member_to_owner(client):
    alpha = AccountFactory()
    member = MembershipFactory(account=alpha, role=Role.SUPPORT)
    client.force_login(staff_of(alpha, Role.ADMIN))
    url = reverse("admin:accounts_membership_change", args=[member.pk])

    promoted = client.post(url, membership_form(member, role=Role.OWNER))
    made_admin = client.post(url, membership_form(member, role=Role.ADMIN))

    assert promoted.status_code == 200
    assert "can make someone an owner" in promoted.content.decode()
    assert made_admin.status_code == 302
    member.refresh_from_db()
    assert member.role == Role.ADMIN


@pytest.mark.django_db
def test_an_account_admin_may_neither_change_nor_remove_an_owner(client):
    alpha = AccountFactory()
    owner = MembershipFactory(account=alpha, role=Role.OWNER)
    client.force_login(staff_of(alpha, Role.ADMIN))

    demoted = client.post(
        reverse("admin:accounts_membership_change", args=[owner.pk]),
        membership_form(owner, role=Role.VIEWER),
    )
    deleted = client.post(
        reverse("admin:accounts_membership_delete", args=[owner.pk]), {"post": "yes"}
    )
    bulk = client.post(
        reverse("admin:accounts_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [owner.pk], "post": "yes"},
    )

    assert demoted.status_code == 403
    assert deleted.status_code == 403
    assert "would require deleting" in bulk.content.decode() or bulk.status_code == 403
    assert Membership.objects.get(pk=owner.pk).role == Role.OWNER


@pytest.mark.django_db
def test_an_owner_invites_promotes_and_removes_owners(client):
    alpha = AccountFactory()
    member = MembershipFactory(account=alpha, role=Role.ADMIN)
    other_owner = MembershipFactory(account=alpha, role=Role.OWNER)
    client.force_login(staff_of(alpha, Role.OWNER))

    added = client.post(
        reverse("admin:accounts_invitation_add"),
        {"email": "newcomer@alpha.example", "account": alpha.pk, "role": Role.OWNER},
    )
    promoted = client.post(
        reverse("admin:accounts_membership_change", args=[member.pk]),
        membership_form(member, role=Role.OWNER),
    )
    removed = client.post(
        reverse("admin:accounts_membership_delete", args=[other_owner.pk]), {"post": "yes"}
    )

    assert [added.status_code, promoted.status_code, removed.status_code] == [302, 302, 302]
    assert Invitation.objects.get(email="newcomer@alpha.example").role == Role.OWNER
    member.refresh_from_db()
    assert member.role == Role.OWNER
    assert not Membership.objects.filter(pk=other_owner.pk).exists()
