"""Taking over users (issue 16, item 6), tried as a hostile tenant admin would, through the admin
pages: an account's admin may not attach a user of another tenant (or of none) by id and then
manage them, and no page shows them a user outside their accounts. People join by invitation:
an emailed link (real SMTP, aiosmtpd) that works once, until it expires, for the invited
address only; tampered, expired, revoked and used links are refused."""

import email
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.invitations import invitation_create
from accounts.models import Invitation, Membership
from tests.console.test_browser import browser, page  # noqa: F401  (Chromium)
from tests.factories import AccountFactory, MembershipFactory, UserFactory
from tests.helpers import smtp_server

User = get_user_model()
Role = Membership.Role
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a long passphrase of my own"
# Everything an account's admin may be given by Django's permissions: what stops them is the
# rule under test, not a missing permission.
PERMISSIONS = ["view_user", "change_user", "delete_user", "add_user", "view_membership",
               "change_membership", "add_membership", "delete_membership", "view_account",
               "view_invitation", "add_invitation"]  # fmt: skip


def staff_of(account, role: str, username: str):
    user = UserFactory(username=username, email=f"{username}@example.com")
    MembershipFactory(user=user, account=account, role=role)
    user.user_permissions.add(*Permission.objects.filter(codename__in=PERMISSIONS))
    return user


@pytest.fixture
def smtp(settings):
    """A real SMTP server (aiosmtpd) that Django's email API hands the invitations to."""
    with smtp_server(settings) as inbox:
        yield inbox


@pytest.fixture
def world(db):
    """Alpha, whose admin is hostile; Bravo, another tenant; a user in no account."""
    alpha, bravo = AccountFactory(name="Alpha"), AccountFactory(name="Bravo")

    class World:
        pass

    w = World()
    w.alpha, w.bravo = alpha, bravo
    w.mallory = staff_of(alpha, Role.ADMIN, "mallory")
    w.alpha_owner = staff_of(alpha, Role.OWNER, "alpha-owner")
    w.alpha_member = MembershipFactory(
        account=alpha, role=Role.SUPPORT, user=UserFactory(username="alpha-support")
    )
    w.victim = MembershipFactory(
        account=bravo, role=Role.OWNER, user=UserFactory(username="bravo-victim")
    ).user
    w.lonely = UserFactory(username="in-no-account")
    return w


def text(response) -> str:
    return response.content.decode()


def invite(client, account, email_address: str, role: str = Role.SUPPORT, capture=None):
    data = {"account": account.pk, "email": email_address, "role": role}
    if capture is None:
        return client.post(reverse("admin:accounts_invitation_add"), data)
    with capture(execute=True):
        return client.post(reverse("admin:accounts_invitation_add"), data)


def link_in(message) -> str:
    """The invitation link's path, from the mail the SMTP server received."""
    body = email.message_from_bytes(message.content).get_payload(decode=True).decode()
    return re.search(r"https?://[^/\s]+(/invitations/[^\s]+/)", body)[1]


def sign_up(client, path: str, username: str = "carol"):
    return client.post(
        path, {"username": username, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )


# Attaching users by id


def test_an_account_admin_cannot_attach_another_tenants_user_or_a_lonely_one(client, world):
    client.force_login(world.mallory)

    answers = [
        client.post(
            reverse("admin:accounts_membership_add"),
            {"user": target.pk, "account": world.alpha.pk, "role": Role.SUPPORT},
        )
        for target in (world.victim, world.lonely)
    ]
    # Had it worked, the user would now be hers to manage: email, password, everything.
    takeover = client.get(reverse("admin:auth_user_change", args=[world.lonely.pk]))

    assert [a.status_code for a in answers] == [403, 403]
    assert not Membership.objects.filter(account=world.alpha, user=world.victim).exists()
    assert not Membership.objects.filter(user=world.lonely).exists()
    assert takeover.status_code == 404


def test_an_account_admin_cannot_move_a_membership_onto_another_user(client, world):
    membership = world.alpha_member
    client.force_login(world.mallory)

    answer = client.post(
        reverse("admin:accounts_membership_change", args=[membership.pk]),
        {"user": world.lonely.pk, "account": world.alpha.pk, "role": Role.VIEWER},
    )

    membership.refresh_from_db()
    assert answer.status_code == 302  # the role, the one thing she may change, is saved
    assert (membership.user, membership.account, membership.role) == (
        world.alpha_member.user,
        world.alpha,
        Role.VIEWER,
    )
    assert not Membership.objects.filter(user=world.lonely).exists()


def test_no_page_shows_a_user_outside_the_viewers_accounts(client, world):
    client.force_login(world.mallory)
    pages = {
        # The raw-id widget named whichever user the id in the address pointed at.
        "membership add, user preset": reverse("admin:accounts_membership_add")
        + f"?user={world.victim.pk}",
        "membership add, lonely preset": reverse("admin:accounts_membership_add")
        + f"?user={world.lonely.pk}",
        "membership list": reverse("admin:accounts_membership_changelist"),
        "membership change": reverse(
            "admin:accounts_membership_change", args=[world.alpha_member.pk]
        ),
        "user list": reverse("admin:auth_user_changelist"),
        "user picker popup": reverse("admin:auth_user_changelist") + "?_to_field=id&_popup=1",
        "user search": reverse("admin:auth_user_changelist") + "?q=bravo",
        "user autocomplete": reverse("admin:autocomplete")
        + "?app_label=accounts&model_name=membership&field_name=user&term=",
        "invitation add": reverse("admin:accounts_invitation_add"),
        "invitation list": reverse("admin:accounts_invitation_changelist"),
    }

    shown = {name: text(client.get(url)) for name, url in pages.items()}

    leaks = {
        name: [who for who in ("bravo-victim", "in-no-account") if who in content]
        for name, content in shown.items()
    }
    assert leaks == {name: [] for name in pages}
    assert "alpha-support" in shown["membership list"]  # the pages did show her own members


def test_history_pages_do_not_name_users_outside_the_viewers_accounts(client, world):
    root = UserFactory(username="root-operator", is_superuser=True)
    client.force_login(root)
    client.post(
        reverse("admin:accounts_account_change", args=[world.alpha.pk]),
        {
            "name": "Alpha",
            "plan_monthly_limit": "1000",
            "retention_days": "",
            "viewer_addresses": "all",
        },
    )
    client.post(
        reverse("admin:accounts_membership_change", args=[world.alpha_member.pk]),
        {"user": world.alpha_member.user_id, "account": world.alpha.pk, "role": Role.VIEWER},
    )
    client.force_login(world.mallory)

    histories = [
        client.get(reverse("admin:accounts_account_history", args=[world.alpha.pk])),
        client.get(reverse("admin:accounts_membership_history", args=[world.alpha_member.pk])),
    ]

    assert [h.status_code for h in histories] == [200, 200]
    assert all("Changed" in text(h) for h in histories)  # the changes are listed...
    assert not any("root-operator" in text(h) for h in histories)  # ...not who made them


# Invitations: the way in


def test_an_invited_address_gets_a_link_that_makes_a_new_member(
    client, world, smtp, django_capture_on_commit_callbacks
):
    client.force_login(world.mallory)
    added = invite(
        client, world.alpha, "Carol@Alpha.example", capture=django_capture_on_commit_callbacks
    )
    [message] = smtp.messages
    path = link_in(message)
    client.logout()

    opened = client.get(path)
    joined = sign_up(client, path)

    assert added.status_code == 302
    assert message.rcpt_tos == ["Carol@Alpha.example"]
    assert opened.status_code == 200
    assert "Join Alpha" in text(opened) and 'name="password1"' in text(opened)
    assert joined.status_code == 302
    carol = User.objects.get(username="carol")
    assert (carol.email, carol.is_staff, carol.is_superuser) == ("Carol@Alpha.example", True, False)
    assert carol.check_password(NEW_PASSWORD)
    assert Membership.objects.get(user=carol).account == world.alpha
    assert Membership.objects.get(user=carol).role == Role.SUPPORT
    home = client.get(reverse("admin:index"))
    assert home.status_code == 200 and "Welcome: you are now Support of Alpha" in text(home)
    # Only the hash of the token is kept: the database cannot rebuild the link.
    token = path.split("/")[-2]
    assert not Invitation.objects.filter(token_hash__contains=token).exists()


def test_a_used_link_cannot_be_used_again(client, world, smtp, django_capture_on_commit_callbacks):
    client.force_login(world.mallory)
    invite(client, world.alpha, "carol@alpha.example", capture=django_capture_on_commit_callbacks)
    path = link_in(smtp.messages[0])
    client.logout()
    sign_up(client, path, username="carol")
    client.logout()

    again = client.get(path)
    second_user = sign_up(client, path, username="carol-again")

    assert again.status_code == 410
    assert "already accepted" in text(again)
    assert second_user.status_code == 410
    assert not User.objects.filter(username="carol-again").exists()


def test_an_expired_link_is_refused(client, world, smtp, django_capture_on_commit_callbacks):
    client.force_login(world.mallory)
    invite(client, world.alpha, "carol@alpha.example", capture=django_capture_on_commit_callbacks)
    path = link_in(smtp.messages[0])
    client.logout()

    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        opened = client.get(path)
        joined = sign_up(client, path)

    assert opened.status_code == 410
    assert "expired" in text(opened)
    assert joined.status_code == 410
    assert not User.objects.filter(username="carol").exists()


def test_a_tampered_link_is_refused(client, world, smtp, django_capture_on_commit_callbacks):
    client.force_login(world.mallory)
    invite(client, world.alpha, "carol@alpha.example", capture=django_capture_on_commit_callbacks)
    path = link_in(smtp.messages[0])
    token = path.split("/")[-2]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    client.logout()

    answers = [
        client.get(f"/invitations/{flipped}/"),
        sign_up(client, f"/invitations/{flipped}/"),
        sign_up(client, f"/invitations/{token[:20]}/"),
    ]

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert "not valid" in text(answers[0])
    assert not User.objects.filter(username="carol").exists()


def test_a_revoked_or_replaced_link_is_refused(
    client, world, smtp, django_capture_on_commit_callbacks
):
    client.force_login(world.mallory)
    invite(client, world.alpha, "carol@alpha.example", capture=django_capture_on_commit_callbacks)
    invite(client, world.alpha, "dave@alpha.example", capture=django_capture_on_commit_callbacks)
    # Inviting carol again replaces her first link.
    invite(client, world.alpha, "carol@alpha.example", capture=django_capture_on_commit_callbacks)
    first_carol, dave, second_carol = (link_in(m) for m in smtp.messages)
    dave_invitation = Invitation.objects.get(email="dave@alpha.example")
    revoked = client.post(
        reverse("admin:accounts_invitation_changelist"),
        {"action": "revoke", "_selected_action": [dave_invitation.pk]},
    )
    client.logout()

    assert revoked.status_code == 302
    assert client.get(dave).status_code == 410
    assert client.get(first_carol).status_code == 410
    assert client.get(second_carol).status_code == 200


def test_the_link_is_accepted_only_by_the_invited_addresss_user(
    client, world, smtp, django_capture_on_commit_callbacks
):
    client.force_login(world.alpha_owner)
    invite(client, world.alpha, "bravo-victim@example.com", role=Role.VIEWER,
           capture=django_capture_on_commit_callbacks)  # fmt: skip
    invite(client, world.alpha, "someone@elsewhere.example", role=Role.VIEWER,
           capture=django_capture_on_commit_callbacks)  # fmt: skip
    to_victim, to_someone = (link_in(m) for m in smtp.messages)

    # Whoever holds a link cannot add the account to the user they are signed in as.
    client.force_login(world.lonely)
    wrong_user = client.post(to_someone)
    client.logout()
    # Nor create a second user for an address that has one: that person signs in instead.
    duplicate = sign_up(client, to_victim, username="victim-copy")
    client.force_login(world.victim)
    accepted = client.post(to_victim)

    assert wrong_user.status_code == 403
    assert not Membership.objects.filter(user=world.lonely).exists()
    assert duplicate.status_code == 409
    assert not User.objects.filter(username="victim-copy").exists()
    assert accepted.status_code == 302
    assert Membership.objects.get(user=world.victim, account=world.alpha).role == Role.VIEWER


def test_an_admin_may_not_invite_an_owner_nor_touch_an_owners_invitation(client, world):
    client.force_login(world.alpha_owner)
    invite(client, world.alpha, "future-owner@alpha.example", role=Role.OWNER)
    owners_invitation = Invitation.objects.get(email="future-owner@alpha.example")
    client.force_login(world.mallory)

    refused = invite(client, world.alpha, "me-again@alpha.example", role=Role.OWNER)
    revoke = client.post(
        reverse("admin:accounts_invitation_changelist"),
        {"action": "revoke", "_selected_action": [owners_invitation.pk]},
    )

    assert refused.status_code == 200
    assert "Only an owner of Alpha can make someone an owner" in text(refused)
    assert not Invitation.objects.filter(email="me-again@alpha.example").exists()
    assert revoke.status_code == 302
    owners_invitation.refresh_from_db()
    assert owners_invitation.state == Invitation.State.PENDING


def test_another_accounts_invitations_are_out_of_reach(client, world):
    bravos = invitation_create(
        account=world.bravo,
        email="bravo-newcomer@bravo.example",
        role=Role.SUPPORT,
        invited_by=staff_of(world.bravo, Role.OWNER, "bravo-owner"),
    )
    client.force_login(world.mallory)

    listed = text(client.get(reverse("admin:accounts_invitation_changelist")))
    opened = client.get(reverse("admin:accounts_invitation_change", args=[bravos.pk]))
    client.post(
        reverse("admin:accounts_invitation_changelist"),
        {"action": "revoke", "_selected_action": [bravos.pk]},
    )
    into_bravo = invite(client, world.bravo, "spy@alpha.example", role=Role.VIEWER)
    invite(client, world.alpha, "alpha-newcomer@alpha.example", role=Role.VIEWER)
    mallorys_list = text(client.get(reverse("admin:accounts_invitation_changelist")))
    # Support members of an account do not see who is invited to it.
    client.force_login(staff_of(world.alpha, Role.SUPPORT, "alpha-reader"))
    reader = client.get(reverse("admin:accounts_invitation_changelist"))

    assert "bravo-newcomer" not in listed
    assert opened.status_code == 404
    bravos.refresh_from_db()
    assert bravos.state == Invitation.State.PENDING
    assert into_bravo.status_code == 200  # the form refuses an account she does not manage
    assert not Invitation.objects.filter(email="spy@alpha.example").exists()
    assert "alpha-newcomer" in mallorys_list
    assert "alpha-newcomer" not in text(reader)
    assert "bravo-newcomer" not in text(reader)


# In a real browser


@pytest.mark.django_db(transaction=True)
def test_an_invited_person_joins_in_a_browser(page, live_server, smtp, settings):  # noqa: F811
    settings.PUBLIC_BASE_URL = live_server.url
    alpha = AccountFactory(name="Alpha")
    owner = staff_of(alpha, Role.OWNER, "alpha-owner")

    page.goto(f"{live_server.url}/admin/login/?next=/admin/accounts/invitation/add/")
    page.fill("#id_username", owner.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.fill("#id_email", "erin@alpha.example")
    page.select_option("#id_account", str(alpha.pk))
    page.select_option("#id_role", Role.SUPPORT)
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("erin@alpha.example")
    expect(page.locator("#result_list")).to_contain_text("sent")
    page.context.clear_cookies()

    [message] = smtp.messages
    body = email.message_from_bytes(message.content).get_payload(decode=True).decode()
    link = re.search(r"http://\S+/invitations/\S+/", body)[0]
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Join Alpha")
    page.fill("#id_username", "erin")
    page.fill("#id_password1", NEW_PASSWORD)
    page.fill("#id_password2", NEW_PASSWORD)
    page.click("text=Create my user and join")

    expect(page.locator(".messagelist")).to_contain_text("Welcome: you are now Support of Alpha")
    erin = User.objects.get(username="erin")
    assert Membership.objects.get(user=erin).account == alpha
    page.goto(link)
    expect(page.locator(".errornote")).to_contain_text("already accepted")


@pytest.mark.parametrize(
    ("role", "manages"), [(Role.ADMIN, True), (Role.OWNER, True), (Role.SUPPORT, False)]
)
def test_an_invited_member_gets_the_rights_of_the_role(
    client, world, smtp, django_capture_on_commit_callbacks, role, manages
):
    """An invited admin manages the account at once (here: invites a colleague) without a
    superuser granting Django permissions by hand; an invited support member only reads."""
    client.force_login(world.alpha_owner)
    invite(
        client, world.alpha, "erin@alpha.example", role, capture=django_capture_on_commit_callbacks
    )
    path = link_in(smtp.messages[0])
    client.logout()
    sign_up(client, path, username="erin")

    invitations = client.get(reverse("admin:accounts_invitation_add"))
    alert_rules = client.get(reverse("admin:alerts_alertrule_changelist"))

    assert Membership.objects.get(user__username="erin").role == role
    assert invitations.status_code == (200 if manages else 403)
    assert alert_rules.status_code == 200  # every role reads the account's rules
