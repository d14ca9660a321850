"""Two-factor console logins: a TOTP authenticator app, with single-use recovery codes.

django-otp supplies the devices (its TOTPDevice and StaticDevice, with their throttling and
replay protection); this module holds the rules around them:

- who must use it: members of an account whose owners require it, and every superuser in
  production (two_factor_required);
- what a fresh session must do before anything else (two_factor_state_for: enter the code, or
  set the app up first), kept in the session and enforced by accounts.middleware;
- who may reset whose second factor when a phone is lost: a superuser anyone's; an owner that
  of a member who is not an owner, and only when they own every account the member belongs
  to (the member's second factor guards all of them).

We use django-otp rather than django-two-factor-auth: the latter's last release predates
Django 6.1 and brings a form wizard and phone-number packages the console does not use;
django-otp is released for current Django and is only models and verification."""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.models import VerifyNotAllowed
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Account, Membership
from accounts.selectors import account_roles_for_user
from accounts.sessions import TwoFactor, console_sessions_end

RECOVERY_CODE_COUNT = 10
APP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"


class TwoFactorRefused(Exception):
    """A code or a reset refused, with the sentence to show."""


@dataclass(frozen=True)
class Enrolled:
    device: TOTPDevice
    recovery_codes: list[str]


def two_factor_device(*, user) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def two_factor_required(*, user) -> bool:
    if user.is_superuser and settings.PRODUCTION:
        return True
    return Account.objects.filter(memberships__user=user, require_two_factor=True).exists()


def two_factor_requiring_accounts(*, user) -> list[str]:
    """Names of the user's accounts that require it (said on the set-up page)."""
    return list(
        Account.objects.filter(memberships__user=user, require_two_factor=True).values_list(
            "name", flat=True
        )
    )


def two_factor_state_for(*, user) -> str:
    """What a session of `user` that has not entered a code must do first."""
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return TwoFactor.VERIFY
    return TwoFactor.ENROL if two_factor_required(user=user) else TwoFactor.NOT_NEEDED


def two_factor_enrolment_start(*, user) -> TOTPDevice:
    """The unconfirmed app device being set up: the same one until it is confirmed, so a
    reload shows the same QR code as the one already scanned."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)


def _normalized(code: str) -> str:
    # People type recovery codes with spaces or dashes and in capitals; app codes with spaces.
    return "".join(code.split()).replace("-", "").lower()


def _throttled_message(device) -> str | None:
    allowed, details = device.verify_is_allowed()
    if allowed:
        return None
    if details and details.get("reason") == VerifyNotAllowed.N_FAILED_ATTEMPTS:
        wait = max(1, int((details["locked_until"] - timezone.now()).total_seconds()) + 1)
        return f"Too many wrong codes: wait {wait} seconds, then enter the code your app shows now."
    return "This code cannot be checked now: try again in a minute."


WRONG_CODE = (
    "That code is not right: enter the 6-digit code your authenticator app shows now (it "
    "changes every 30 seconds), or one of your recovery codes."
)
NO_CODE = "Enter the 6-digit code from your authenticator app, or one of your recovery codes."


def two_factor_enrolment_confirm(*, user, device: TOTPDevice, code: str) -> Enrolled:
    """Confirm the app with a code it shows, and issue recovery codes."""
    code = _normalized(code)
    if not code.isdigit():
        raise TwoFactorRefused("Enter the 6-digit code your authenticator app shows now.")
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        throttled = _throttled_message(device)
        accepted = throttled is None and device.verify_token(code)
        if accepted:
            # One app at a time: a new one replaces the old.
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
    if throttled:
        raise TwoFactorRefused(throttled)
    if not accepted:
        raise TwoFactorRefused(
            "That code is not right: scan the QR code (or type the key) into your app again, "
            "then enter the 6-digit code it shows now."
        )
    return Enrolled(device=device, recovery_codes=two_factor_recovery_codes_issue(user=user))


def two_factor_recovery_codes_issue(*, user) -> list[str]:
    """New recovery codes; the previous ones stop working. Shown once."""
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def two_factor_recovery_codes_left(*, user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def two_factor_verify(*, user, code: str):
    """The device that accepts `code` (the app's 6 digits, or a recovery code, which is then
    used up), or TwoFactorRefused saying what to do. Wrong codes slow further tries down
    (django-otp's throttling doubles the wait after each)."""
    code = _normalized(code)
    if not code:
        raise TwoFactorRefused(NO_CODE)
    kind = TOTPDevice if code.isdigit() else StaticDevice
    throttled = None
    accepted = None
    # Outside the transaction the refusal is raised: the failed attempt it counted is kept.
    with transaction.atomic():
        for device in devices_for_user(user, for_verify=True):
            if not isinstance(device, kind):
                continue
            throttled = _throttled_message(device)
            if throttled is None and device.verify_token(code):
                accepted = device
                break
    if accepted is not None:
        return accepted
    raise TwoFactorRefused(throttled or WRONG_CODE)


def two_factor_disable(*, user) -> None:
    """The user turns their own second factor off (refused when it is required)."""
    if two_factor_required(user=user):
        raise TwoFactorRefused(
            "Your account requires two-factor login: it cannot be turned off. Set up a new "
            "app instead."
        )
    _devices_delete(user=user)


def _devices_delete(*, user) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


def two_factor_resettable_by(*, user, member) -> bool:
    """Whether `user` may reset `member`'s second factor (a lost phone). A superuser may
    reset anyone's but their own (that is done on their own page); an owner that of a member
    who is an owner nowhere, when they own every account the member belongs to; nobody
    else."""
    if not user.is_active or user.pk == member.pk:
        return False
    if user.is_superuser:
        return True
    if member.is_superuser:
        return False
    roles = account_roles_for_user(user=user)
    memberships = list(Membership.objects.filter(user=member).values_list("account_id", "role"))
    return bool(memberships) and all(
        roles.get(account_id) == Membership.Role.OWNER and role != Membership.Role.OWNER
        for account_id, role in memberships
    )


RESET_REFUSED = (
    "Only a superuser can reset an owner's second factor; an owner can reset that of a member "
    "who is an owner nowhere, if they own every account that member belongs to."
)


def two_factor_reset(*, user, member) -> None:
    """Remove `member`'s app and recovery codes and end their sessions: at their next
    sign-in they set up a new app (or sign in with the password alone if nothing requires
    it). Ending the sessions shuts out whoever may hold the lost phone and a session."""
    if not two_factor_resettable_by(user=user, member=member):
        raise TwoFactorRefused(RESET_REFUSED)
    with transaction.atomic():
        _devices_delete(user=member)
        console_sessions_end(user=member)
