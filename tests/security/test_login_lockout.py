"""Console login lockout (issue 16, item 7), tried as someone guessing a console user's password
through the admin's login form: after LOGIN_FAILURE_LIMIT failures from one address that user
is locked out there, even with the right password, for LOGIN_LOCKOUT_MINUTES; the person is
told so in words; superusers (only they) see the lockout in the admin and can lift it.

django-axes is on here as in production (AXES_ENABLED is not touched): every login goes
through the form, with a request, as a browser's does."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from tests.factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"
LOCKED = "Too many failed logins: try again in 15 minutes or ask an administrator."


def log_in(client, username: str, password: str, address: str = ATTACKER):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def signed_in(client) -> bool:
    return client.get(reverse("admin:index")).status_code == 200


def guess(client, username: str, times: int, address: str = ATTACKER) -> list[int]:
    return [log_in(client, username, f"guess-{n}", address).status_code for n in range(times)]


def test_five_wrong_passwords_lock_the_user_out_even_with_the_right_one(client, settings):
    UserFactory(username="alice")

    statuses = guess(client, "alice", 5)
    right = log_in(client, "alice", PASSWORD)

    # Four ordinary "wrong password" pages, then the lockout.
    assert statuses == [200, 200, 200, 200, 429]
    assert right.status_code == 429
    assert LOCKED in right.content.decode()
    assert right["Retry-After"] == "900"
    assert not signed_in(client)
    # As in production: the suite does not turn axes off; the defaults are the documented ones.
    assert settings.AXES_ENABLED
    assert (settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_LOCKOUT_MINUTES) == (5, 15)


def test_the_lockout_is_per_user_and_address(client):
    UserFactory(username="alice")
    UserFactory(username="bob")
    guess(client, "alice", 5)

    alice_here = log_in(client, "alice", PASSWORD)
    bob_here = log_in(client, "bob", PASSWORD)
    client.logout()
    alice_elsewhere = log_in(client, "alice", PASSWORD, address=ELSEWHERE)

    # Someone guessing from one address cannot lock the real person out from theirs.
    assert alice_here.status_code == 429
    assert bob_here.status_code == 302
    assert alice_elsewhere.status_code == 302
    assert signed_in(client)


def test_the_lockout_lifts_after_the_cool_off(client):
    UserFactory(username="alice")
    guess(client, "alice", 5)
    locked = log_in(client, "alice", PASSWORD)

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        later = log_in(client, "alice", PASSWORD)

    assert locked.status_code == 429
    assert later.status_code == 302


def test_a_successful_login_forgets_earlier_failures(client):
    UserFactory(username="alice")
    guess(client, "alice", 4)
    assert log_in(client, "alice", PASSWORD).status_code == 302
    client.logout()

    # The count starts again at the success: the fifth mistake after it, not the first, locks.
    assert guess(client, "alice", 5) == [200, 200, 200, 200, 429]


def test_superusers_see_the_lockout_and_lift_it_tenant_owners_do_not(client):
    UserFactory(username="alice")
    guess(client, "alice", 5)
    attempts = reverse("admin:axes_accessattempt_changelist")
    # A tenant's owner given every Django permission there is: still not the install's log.
    owner = UserFactory(username="owner-of-alpha")
    MembershipFactory(user=owner, account=AccountFactory(), role=Membership.Role.OWNER)
    owner.user_permissions.set(Permission.objects.all())

    client.force_login(owner)
    owner_list = client.get(attempts)
    owner_index = client.get(reverse("admin:index")).content.decode()
    client.force_login(UserFactory(username="root", is_superuser=True))
    superuser_list = client.get(attempts)
    attempt_ids = [
        str(pk) for pk in superuser_list.context["cl"].result_list.values_list("pk", flat=True)
    ]
    lifted = client.post(
        attempts, {"action": "delete_selected", "_selected_action": attempt_ids, "post": "yes"}
    )
    client.logout()
    after = log_in(client, "alice", PASSWORD)

    assert owner_list.status_code == 403
    assert "Access attempts" not in owner_index
    assert superuser_list.status_code == 200
    assert "alice" in superuser_list.content.decode()
    assert lifted.status_code == 302
    assert after.status_code == 302
