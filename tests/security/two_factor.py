"""Helpers for the two-factor tests: codes computed from a device's secret, as a phone's
authenticator app computes them (RFC 6238, django-otp's own implementation of it)."""

import time

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.two_factor import (
    two_factor_enrolment_confirm,
    two_factor_enrolment_start,
)


def code_for(device: TOTPDevice) -> str:
    """The code an app shows for `device` now, or in the next 30 seconds when this one was
    already used (a code works once): what a person who waits for the next code types."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    totp.time = time.time()
    step = max(totp.t() + device.drift - 1, device.last_t + 1)
    totp.drift = step - totp.t()
    return f"{totp.token():0{device.digits}d}"


def enrolled(user) -> tuple[TOTPDevice, list[str]]:
    """`user` with an authenticator app set up through the service, and their recovery
    codes."""
    device = two_factor_enrolment_start(user=user)
    done = two_factor_enrolment_confirm(user=user, device=device, code=code_for(device))
    return done.device, done.recovery_codes
