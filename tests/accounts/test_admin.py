"""The console's tenancy pages: who sees which account's environments, API keys and members.
How new credentials are shown (once) is in test_secret_page.py."""

import base64
import html
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.groups import support_group_sync
from accounts.models import Account, ApiKey, Environment, Membership
from tests.factories import (
    AccountFactory,
    ApiKeyFactory,
    EnvironmentFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def get_environment(client, authorization: str):
    return client.get("/api/v1/environment", headers={"authorization": authorization})


def page(response) -> str:
    return html.unescape(response.content.decode())


def support_user_of(account: Account, *extra_permissions: str, role: str = Membership.Role.SUPPORT):
    """A staff user, member of `account` with `role`, in the Support group, which is also
    given view permissions on the accounts app (the demo's Support group has none there)."""
    user = UserFactory(is_staff=True)
    MembershipFactory(user=user, account=account, role=role)
    group = support_group_sync()
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="accounts", codename__startswith="view_")
    )
    user.groups.add(group)
    if extra_permissions:
        user.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="accounts", codename__in=extra_permissions
            )
        )
    return user


@dataclass
class Tenant:
    account: Account
    environment: Environment
    api_key: ApiKey
    member_name: str


def tenant(name: str) -> Tenant:
    account = AccountFactory(name=f"{name} Corp")
    environment = EnvironmentFactory(account=account, name=f"{name.lower()}-production")
    api_key = ApiKeyFactory(environment=environment, name=f"{name.lower()}-ci-key")
    member = MembershipFactory(account=account, user=UserFactory(username=f"{name.lower()}-owner"))
    return Tenant(account, environment, api_key, member.user.username)


def test_login_page_answers(client):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert "Notification log" in page(response)


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(reverse("admin:accounts_environment_changelist"))

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_superuser_sees_every_accounts_environments(client, django_assert_max_num_queries):
    alpha, bravo = tenant("Alpha"), tenant("Bravo")
    EnvironmentFactory.create_batch(5)
    client.force_login(UserFactory(is_superuser=True))

    # Session, user, the paginator count, one page of environments joined to accounts.
    with django_assert_max_num_queries(4):
        response = client.get(reverse("admin:accounts_environment_changelist"))

    assert response.status_code == 200
    content = page(response)
    for environment in (alpha.environment, bravo.environment):
        assert environment.client_id in content
        assert environment.name in content


CHANGELISTS = [
    pytest.param(
        "admin:accounts_environment_changelist",
        lambda t: t.environment.client_id,
        id="environments",
    ),
    pytest.param("admin:accounts_account_changelist", lambda t: t.account.name, id="accounts"),
    pytest.param("admin:accounts_apikey_changelist", lambda t: t.api_key.prefix, id="api-keys"),
    pytest.param("admin:accounts_membership_changelist", lambda t: t.member_name, id="members"),
]


@pytest.mark.parametrize(("url_name", "marker"), CHANGELISTS)
def test_support_user_sees_only_their_accounts_objects(
    client, django_assert_max_num_queries, url_name, marker
):
    alpha, bravo = tenant("Alpha"), tenant("Bravo")
    # More rows, so a query per row would show in the count.
    for _ in range(3):
        ApiKeyFactory(environment=EnvironmentFactory(account=alpha.account))
        MembershipFactory(account=alpha.account)
    client.force_login(support_user_of(alpha.account))

    with django_assert_max_num_queries(6):
        response = client.get(reverse(url_name))

    assert response.status_code == 200
    content = page(response)
    assert marker(alpha) in content
    assert marker(bravo) not in content
    assert "Bravo" not in content


def test_support_user_opens_their_own_environment(client):
    alpha = tenant("Alpha")
    client.force_login(support_user_of(alpha.account))

    response = client.get(reverse("admin:accounts_environment_change", args=[alpha.environment.pk]))

    assert response.status_code == 200
    assert alpha.environment.client_id in page(response)


def test_support_user_cannot_open_another_accounts_environment(client):
    alpha, bravo = tenant("Alpha"), tenant("Bravo")
    client.force_login(support_user_of(alpha.account))
    missing_pk = Environment.objects.order_by("-pk").first().pk + 1000

    response = client.get(reverse("admin:accounts_environment_change", args=[bravo.environment.pk]))
    missing = client.get(reverse("admin:accounts_environment_change", args=[missing_pk]))

    # The same answer as for an environment that does not exist: never the object, never 403.
    assert response.status_code == 404
    assert response.status_code == missing.status_code
    followed = client.get(
        reverse("admin:accounts_environment_change", args=[bravo.environment.pk]), follow=True
    )
    assert bravo.environment.client_id not in page(followed)
    assert bravo.environment.name not in page(followed)


def test_environment_change_page_never_shows_the_client_secret(client):
    environment = EnvironmentFactory(client_secret="plain-client-secret-never-shown")
    client.force_login(UserFactory(is_superuser=True))

    change = client.get(reverse("admin:accounts_environment_change", args=[environment.pk]))
    changelist = client.get(reverse("admin:accounts_environment_changelist"))

    assert change.status_code == 200
    assert environment.client_id in page(change)
    assert "plain-client-secret-never-shown" not in page(change)
    assert "plain-client-secret-never-shown" not in page(changelist)


def test_api_key_add_form_offers_only_the_users_environments(client):
    alpha, bravo = tenant("Alpha"), tenant("Bravo")
    client.force_login(support_user_of(alpha.account, "add_apikey", role=Membership.Role.ADMIN))

    form = client.get(reverse("admin:accounts_apikey_add"))
    refused = client.post(
        reverse("admin:accounts_apikey_add"),
        {"environment": bravo.environment.pk, "name": "sneaky", "scopes": "read"},
    )

    assert form.status_code == 200
    assert str(alpha.environment) in page(form)
    assert str(bravo.environment) not in page(form)
    assert refused.status_code == 200
    assert "Select a valid choice" in page(refused)
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_revoke_action_makes_the_key_refused(client):
    api_key = ApiKeyFactory()
    client.force_login(UserFactory(is_superuser=True))

    response = client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
        follow=True,
    )

    assert "Revoked 1 key(s)." in page(response)
    answer = get_environment(client, f"Bearer {api_key.plain}")
    assert answer.status_code == 401
    assert "revoked" in answer.json()["message"]


@pytest.mark.parametrize("role", [Membership.Role.OWNER, Membership.Role.ADMIN])
def test_tenant_members_cannot_raise_their_own_plan_limit(client, role):
    alpha = tenant("Alpha")
    Account.objects.filter(pk=alpha.account.pk).update(plan_monthly_limit=1000)
    # Owners and admins may change their account (its name here); the plan is not theirs.
    client.force_login(support_user_of(alpha.account, "change_account", role=role))
    url = reverse("admin:accounts_account_change", args=[alpha.account.pk])

    form = page(client.get(url))
    posted = client.post(
        url,
        {
            "name": "Alpha Renamed",
            "plan_monthly_limit": 1_000_000,
            "retention_days": "",
            "viewer_addresses": "all",
        },
    )

    assert posted.status_code == 302
    alpha.account.refresh_from_db()
    assert alpha.account.name == "Alpha Renamed"  # the change went through...
    assert alpha.account.plan_monthly_limit == 1000  # ...without the plan
    assert 'name="plan_monthly_limit"' not in form


def test_a_superuser_sets_an_accounts_plan_limit(client):
    alpha = tenant("Alpha")
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    url = reverse("admin:accounts_account_change", args=[alpha.account.pk])

    posted = client.post(
        url,
        {
            "name": alpha.account.name,
            "plan_monthly_limit": 1_000_000,
            "retention_days": "",
            "viewer_addresses": "all",
        },
    )

    assert posted.status_code == 302
    alpha.account.refresh_from_db()
    assert alpha.account.plan_monthly_limit == 1_000_000


def test_membership_form_does_not_list_other_tenants_users(client):
    alpha, bravo = tenant("Alpha"), tenant("Bravo")
    client.force_login(support_user_of(alpha.account, "add_membership", role=Membership.Role.ADMIN))

    # Members join by invitation: the account's admin names an address, never a user.
    membership_form = client.get(reverse("admin:accounts_membership_add"))
    form = page(client.get(reverse("admin:accounts_invitation_add")))

    assert membership_form.status_code == 403
    assert 'name="email"' in form
    assert 'name="user"' not in form
    assert bravo.member_name not in form


def test_a_support_member_with_change_rights_still_only_reads_its_accounts_settings(client):
    alpha = tenant("Alpha")
    client.force_login(support_user_of(alpha.account, "change_environment", "add_apikey"))
    url = reverse("admin:accounts_environment_change", args=[alpha.environment.pk])

    shown = client.get(url)
    posted = client.post(url, {"account": alpha.account.pk, "name": "renamed"})
    add_form = page(client.get(reverse("admin:accounts_apikey_add")))

    assert shown.status_code == 200 and 'value="Save"' not in page(shown)
    assert posted.status_code == 403
    alpha.environment.refresh_from_db()
    assert alpha.environment.name != "renamed"
    assert str(alpha.environment) not in add_form  # keys go only into accounts one manages


def test_an_account_admin_changes_its_environment(client):
    alpha = tenant("Alpha")
    client.force_login(
        support_user_of(alpha.account, "change_environment", role=Membership.Role.ADMIN)
    )
    url = reverse("admin:accounts_environment_change", args=[alpha.environment.pk])

    posted = client.post(url, {"account": alpha.account.pk, "name": "renamed"})

    assert posted.status_code == 302
    alpha.environment.refresh_from_db()
    assert alpha.environment.name == "renamed"


def test_rotate_by_a_support_member_is_skipped_and_says_so(client):
    alpha = tenant("Alpha")
    environment = EnvironmentFactory(account=alpha.account, client_secret="keep-me")
    client.force_login(support_user_of(alpha.account, "change_environment"))

    response = client.post(
        reverse("admin:accounts_environment_changelist"),
        {"action": "rotate_client_secret", "_selected_action": [environment.pk]},
        follow=True,
    )

    assert "not an owner or admin" in page(response)
    environment.refresh_from_db()
    assert environment.client_secret() == "keep-me"
