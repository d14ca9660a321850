"""Invitations: how a person joins an account. An owner or admin invites an email address with
a role; the address gets a link with a random token (only its SHA-256 is stored, as for API
keys); whoever opens it either creates their own user (username and password of their choice)
or, already signed in as a user with that email, accepts. Only then is a Membership made.

This replaces picking a user by id: a tenant's managers never choose among the install's users,
so they can neither attach someone outside their accounts nor learn who exists. Only
superusers attach existing users directly (the membership admin)."""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.crypto import secret_hash
from accounts.groups import group_for_role
from accounts.models import Account, Invitation, Membership

logger = logging.getLogger(__name__)


class InvitationRefused(Exception):
    """The link cannot be used; the message tells the person what to do instead. `status` is
    the HTTP status the page answers with: 404 for a link that never existed (mistyped or
    tampered with), 410 for one that did but no longer works."""

    def __init__(self, message: str, *, status: int = 410):
        super().__init__(message)
        self.status = status


def _token_new() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, secret_hash(token)


def invitation_url(*, token: str) -> str:
    return settings.PUBLIC_BASE_URL + reverse("invitation-accept", args=[token])


def _expiry() -> timedelta:
    return timedelta(days=settings.INVITATION_EXPIRY_DAYS)


def invitation_create(*, account: Account, email: str, role: str, invited_by) -> Invitation:
    """Invite `email` into `account` with `role` and mail the link once the transaction
    commits (no SMTP call inside it). An open invitation of the same address to the same
    account is revoked: its link stops working. Whether the caller may invite with this role
    is the caller's check (accounts.selectors.role_manages)."""
    now = timezone.now()
    token, token_hash = _token_new()
    with transaction.atomic():
        Invitation.objects.filter(
            account=account, email__iexact=email, accepted_at=None, revoked_at=None
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            account=account,
            email=email.strip(),
            role=role,
            invited_by=invited_by,
            token_hash=token_hash,
            created_at=now,
            expires_at=now + _expiry(),
        )
        transaction.on_commit(lambda: invitation_email_send(invitation=invitation, token=token))
    return invitation


def invitation_renew(*, invitation: Invitation) -> Invitation:
    """A new link (and expiry) for an open invitation, mailed on commit; the old link stops
    working. Accepted and revoked invitations stay as they are."""
    token, token_hash = _token_new()
    with transaction.atomic():
        renewed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at=None, revoked_at=None
        ).update(
            token_hash=token_hash,
            expires_at=timezone.now() + _expiry(),
            email_sent_at=None,
            email_error="",
        )
        if renewed:
            invitation.refresh_from_db()
            transaction.on_commit(lambda: invitation_email_send(invitation=invitation, token=token))
    return invitation


def invitation_revoke(*, invitation: Invitation) -> Invitation:
    Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    invitation.refresh_from_db()
    return invitation


def invitation_email_text(*, invitation: Invitation, token: str) -> tuple[str, str]:
    """(subject, body) of the invitation email."""
    days = settings.INVITATION_EXPIRY_DAYS
    subject = f"You are invited to {invitation.account.name} on the notification log console"
    body = (
        f"You are invited to join {invitation.account.name} as "
        f"{invitation.get_role_display()} on the notification log console.\n\n"
        f"Open this link to accept and choose your username and password (or, if you already "
        f"have a user there with this email address, to add the account to it):\n\n"
        f"{invitation_url(token=token)}\n\n"
        f"The link works once and expires in {days} day{'s' if days != 1 else ''}. If you did "
        "not expect this email, ignore it: nothing happens unless the link is opened and "
        "accepted.\n"
    )
    return subject, body


def invitation_email_send(*, invitation: Invitation, token: str) -> bool:
    """Mail the link through Django's email API (MAILERS), outside any transaction. The
    outcome is kept on the invitation (a coarse reason, never the link), for the console to
    show; a failed email is sent again with the admin's "Send a new link" action."""
    subject, body = invitation_email_text(invitation=invitation, token=token)
    message = EmailMessage(
        subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[invitation.email]
    )
    try:
        message.send()
    except OSError as exc:  # smtplib.SMTPException is an OSError too
        error = f"email not accepted: {type(exc).__name__}"
        logger.warning("invitation %s: %s", invitation.pk, error)
        Invitation.objects.filter(pk=invitation.pk).update(email_error=error)
        return False
    Invitation.objects.filter(pk=invitation.pk).update(email_sent_at=timezone.now(), email_error="")
    return True


_NOT_VALID = (
    "This invitation link is not valid: check that it was copied whole from the email, or ask "
    "whoever invited you to send a new one."
)


def invitation_for_token(*, token: str, lock: bool = False) -> Invitation:
    """The open invitation the link's token names, or InvitationRefused saying why not."""
    invitations = Invitation.objects.select_related("account")
    if lock:
        invitations = invitations.select_for_update(of=("self",))
    invitation = invitations.filter(token_hash=secret_hash(token)).first()
    if invitation is None:
        raise InvitationRefused(_NOT_VALID, status=404)
    account = invitation.account
    if account.deleting_at is not None:
        raise InvitationRefused(f"The account {account.name} no longer exists.")
    state = invitation.state
    if state == Invitation.State.ACCEPTED:
        raise InvitationRefused(
            "This invitation was already accepted and its link works only once. Log in to the "
            "console, or ask whoever invited you for a new invitation."
        )
    if state == Invitation.State.REVOKED:
        raise InvitationRefused(
            f"This invitation to {account.name} was withdrawn or replaced by a newer one: use "
            "the link in the newest email, or ask whoever invited you to send one."
        )
    if state == Invitation.State.EXPIRED:
        raise InvitationRefused(
            f"This invitation to {account.name} expired on "
            f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC: ask whoever invited you to send a new "
            "link."
        )
    return invitation


def email_has_user(*, email: str) -> bool:
    return get_user_model().objects.filter(email__iexact=email).exists()


@dataclass(frozen=True)
class Accepted:
    membership: Membership
    # False when the user already belonged to the account: their role there is unchanged.
    created: bool


def _accept(*, invitation: Invitation, user) -> Accepted:
    membership, created = Membership.objects.get_or_create(
        user=user, account=invitation.account, defaults={"role": invitation.role}
    )
    # The rights of the role (accounts.groups): a member's Django permissions say what they
    # may do at all, their role in each account where. A superuser may narrow the group.
    user.groups.add(group_for_role(membership.role))
    Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now(), accepted_by=user)
    return Accepted(membership, created)


@transaction.atomic
def invitation_accept(*, token: str, user) -> Accepted:
    """`user`, signed in, accepts the invitation. Only the invited address's own user may:
    the link alone does not let someone add another account to whatever user they are signed
    in as. The invitation row is locked, so a link is used once even when sent twice at once."""
    invitation = invitation_for_token(token=token, lock=True)
    if (user.email or "").strip().lower() != invitation.email.strip().lower():
        raise InvitationRefused(
            f"This invitation is for {invitation.email}, and you are signed in as "
            f"{user.get_username()}, whose email differs: log out and open the link again, or "
            "ask for an invitation to your own address.",
            status=403,
        )
    return _accept(invitation=invitation, user=user)


@transaction.atomic
def invitation_accept_as_new_user(*, token: str, user) -> Accepted:
    """Create `user` (unsaved, its username and password set by the person from the link) with
    the invited address and make it a member. Refused when a user with that address exists:
    that person signs in and accepts instead (invitation_accept)."""
    invitation = invitation_for_token(token=token, lock=True)
    if email_has_user(email=invitation.email):
        raise InvitationRefused(
            f"A user with the address {invitation.email} already exists: log in as that user, "
            "then open the link again to accept.",
            status=409,
        )
    user.email = invitation.email
    user.is_staff = True  # the console is the Django admin
    user.is_superuser = False
    user.save()
    return _accept(invitation=invitation, user=user)
