import secrets
import string

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.crypto import secret_decrypt


class LiveManager(models.Manager):
    """The default manager of tenants: rows being deleted are not there. Every queryset
    that reaches a person (admin, selectors, credential lookups, foreign-key choices) starts
    here, so a tenant vanishes everywhere at once when it is marked, before its logs are
    removed in the background (accounts/deletion.py). `all_objects` sees every row."""

    def get_queryset(self):
        return super().get_queryset().filter(deleting_at=None)


class EveryRowManager(models.Manager):
    """Every row, those being deleted included: for the deletion itself and the checks
    that must see them."""


class Account(models.Model):
    """A company using the service: the tenant people belong to."""

    # Unique among live accounts: a name is free again as soon as its account is deleted.
    name = models.CharField(max_length=200)
    # Notifications a month the plan allows; empty means unlimited.
    plan_monthly_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Notifications a month; empty for unlimited."
    )
    # Days of logs this account keeps, when fewer than the install's LOG_RETENTION_DAYS:
    # its older rows go nightly in batches (logs/retention.py). Empty: the install's.
    retention_days = models.PositiveSmallIntegerField(
        "retention (days)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Keep this account's logs fewer days than the install does; empty for the "
        "install's retention.",
    )
    # What the account's viewers (the read-only role) see of an email address or a phone
    # number: all of it, or masked (o•••@example.com, +44 ••• ••3217) on every console page.
    # Support, admins and owners always see all: support searches by them. Owners choose.
    viewer_addresses = models.CharField(
        "addresses viewers see",
        max_length=10,
        choices=[
            ("all", "All: viewers see addresses in full"),
            ("masked", "Masked: o•••@example.com, +44 ••• ••3217"),
        ],
        default="all",
        help_text="What members with the viewer role see of email addresses and phone numbers. "
        "Support, admins and owners always see them in full.",
    )
    # Set by the account's owners: every member must sign in to the console with a second
    # factor, and one who has none is sent to set it up before anything else
    # (accounts/two_factor.py).
    require_two_factor = models.BooleanField(
        "require two-factor login",
        default=False,
        help_text="Every member signs in with a code from an authenticator app after the "
        "password; members without one set it up at their next request. Only owners change this.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Set when someone deletes the account: it is hidden at once and removed in the
    # background with its environments and their logs (accounts/deletion.py).
    deleting_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = LiveManager()
    all_objects = EveryRowManager()

    class Meta:
        ordering = ["name"]
        base_manager_name = "all_objects"
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(deleting_at=None), name="account_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        super().clean()
        if self.retention_days is not None and self.retention_days > settings.LOG_RETENTION_DAYS:
            raise ValidationError(
                {
                    "retention_days": f"At most {settings.LOG_RETENTION_DAYS} days (the install's "
                    "LOG_RETENTION_DAYS); leave it empty to keep the install's retention."
                }
            )
        days = self.retention_days or settings.LOG_RETENTION_DAYS
        longer = (
            self.environments.filter(content_retention_days__gte=days).order_by("name")
            if self.pk
            else []
        )
        if longer:
            names = ", ".join(f"{e.name} ({e.content_retention_days})" for e in longer)
            raise ValidationError(
                {
                    "retention_days": f"Its environments' content retention must stay shorter "
                    f"than the logs' {days} days: lower it first in {names}."
                }
            )


_CLIENT_ID_ALPHABET = string.ascii_lowercase + string.digits


def client_id_generate() -> str:
    # Same shape as NotificationAPI's client ids (26 lowercase letters and digits).
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(26))


class Environment(models.Model):
    """One isolated set of logs and credentials (production, staging, ...) of an account.
    Its client id and secret are what NotificationAPI's SDKs authenticate with."""

    account = models.ForeignKey(Account, on_delete=models.DB_CASCADE, related_name="environments")
    name = models.CharField(max_length=100)
    client_id = models.CharField(max_length=64, unique=True, default=client_id_generate)
    # Fernet token (see accounts/crypto.py); the plain secret is shown once at creation.
    client_secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Set when the environment (or its account) is deleted: hidden and refused at once, its
    # logs removed in the background in small batches, then the row (accounts/deletion.py).
    deleting_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Days the content of its notifications is kept, fewer than its logs: after them the
    # nightly job clears subjects, bodies, merge tags and provider payloads and keeps the
    # timeline and metadata (logs/content_retention.py). Empty: content lives as long as
    # the log.
    content_retention_days = models.PositiveSmallIntegerField(
        "content retention (days)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Clear the content of notifications (subjects, bodies, merge tags, provider "
        "payloads) after this many days, keeping their timeline and metadata until the log's "
        "retention removes them. Fewer days than the log's retention; empty to keep content "
        "as long as the log.",
    )
    # How far the content clearing has got: every notification at or before this
    # (created_at, id) was cleared or skipped as not due (logs/content_retention.py), so a
    # night's run starts here instead of re-reading the days it cleared before.
    content_cleared_through = models.DateTimeField(null=True, blank=True, editable=False)
    content_cleared_through_id = models.UUIDField(null=True, blank=True, editable=False)

    objects = LiveManager()
    all_objects = EveryRowManager()

    class Meta:
        ordering = ["account__name", "name"]
        base_manager_name = "all_objects"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"],
                condition=models.Q(deleting_at=None),
                name="environment_unique_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account.name} / {self.name}"

    def client_secret(self) -> str:
        return secret_decrypt(self.client_secret_encrypted)

    def log_retention_days(self) -> int:
        """Days its logs are kept: the account's shorter retention, else the install's."""
        account_days = self.account.retention_days if self.account_id else None
        return min(account_days or settings.LOG_RETENTION_DAYS, settings.LOG_RETENTION_DAYS)

    def clean(self):
        super().clean()
        days = self.content_retention_days
        if days is None or not self.account_id:
            return
        log_days = self.log_retention_days()
        if days >= log_days:
            raise ValidationError(
                {
                    "content_retention_days": f"Must be fewer days than the log's retention "
                    f"({log_days} days), which removes content with the rest of each "
                    f"notification; choose 1 to {log_days - 1}, or leave it empty."
                    if log_days > 1
                    else "The log is kept 1 day: content cannot be kept for less. Leave it empty."
                }
            )


class LiveApiKeyManager(models.Manager):
    """API keys of environments being deleted are not there (see LiveManager)."""

    def get_queryset(self):
        return super().get_queryset().filter(environment__deleting_at=None)


class ApiKey(models.Model):
    """An extra credential for an environment, limited to scopes, that can be revoked without
    rotating the client secret the SDKs use."""

    class Scope(models.TextChoices):
        SEND = "send", "Send notifications"
        READ = "read", "Read logs"
        # Owner-level: erase an end user's data (DELETE /api/v1/users/{userId}/data).
        MANAGE = "manage", "Manage data (erase a user's data)"

    PREFIX = "nlk_"

    environment = models.ForeignKey(
        Environment, on_delete=models.DB_CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    # The first characters of the key, shown in the console so a key can be recognised.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = ArrayField(models.CharField(max_length=10, choices=Scope.choices), default=list)
    # A read key for a tool that needs the log but not who it went to (an analytics export):
    # its answers carry email addresses and phone numbers masked, as a masked viewer sees them.
    masked = models.BooleanField(
        "masked addresses",
        default=False,
        help_text="Read answers show email addresses and phone numbers masked "
        "(o•••@example.com, +44 ••• ••3217).",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = LiveApiKeyManager()
    all_objects = EveryRowManager()

    class Meta:
        ordering = ["-created_at"]
        base_manager_name = "all_objects"
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({', '.join(self.scopes)})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Membership(models.Model):
    """A console user's role in an account. Staff see only accounts they are members of."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        SUPPORT = "support", "Support"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DB_CASCADE, related_name="memberships"
    )
    account = models.ForeignKey(Account, on_delete=models.DB_CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "account"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.get_role_display()})"


class Invitation(models.Model):
    """An email address invited into an account with a role. The link mailed to it carries a
    random token; only the token's SHA-256 is stored (as for API keys), so neither the
    database nor the console can rebuild a link. Accepting it (accounts/invitations.py) is what
    makes the Membership: an account's owners and admins never pick an existing user, so they
    cannot attach, and then manage, someone outside their accounts."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    account = models.ForeignKey(Account, on_delete=models.DB_CASCADE, related_name="invitations")
    email = models.EmailField(
        help_text="The link is sent to this address; only its owner can accept."
    )
    role = models.CharField(
        max_length=10, choices=Membership.Role.choices, default=Membership.Role.VIEWER
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # Kept for the record (shown to superusers only: the inviter may leave the account).
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(editable=False)
    # When the email left for the SMTP server or ESP, or the coarse reason it did not.
    email_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    email_error = models.CharField(max_length=200, blank=True, editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="+",
        editable=False,
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open invitation per address and account: inviting again revokes the older.
            models.UniqueConstraint(
                "account",
                Lower("email"),
                condition=models.Q(accepted_at=None, revoked_at=None),
                name="invitation_unique_open_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.account} ({self.get_role_display()})"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return self.State.ACCEPTED
        if self.revoked_at:
            return self.State.REVOKED
        if self.expires_at <= timezone.now():
            return self.State.EXPIRED
        return self.State.PENDING


class ConsoleSession(models.Model):
    """One signed-in console session, found by its user: Django's session table cannot be
    searched by user (the user id is inside the encoded data). Written at sign-in and, at most
    once a minute, as the person uses the console (accounts/sessions.py); ending a session
    deletes Django's session row and this one. The session key is never shown: the page names
    a session by this row's id."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DB_CASCADE, related_name="console_sessions"
    )
    session_key = models.CharField(max_length=40, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_seen_at = models.DateTimeField(default=timezone.now, editable=False)
    ip_address = models.GenericIPAddressField(null=True, blank=True, editable=False)
    user_agent = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [models.Index(fields=["user", "-last_seen_at"], name="console_session_user")]

    def __str__(self) -> str:
        return f"{self.user} since {self.created_at:%Y-%m-%d %H:%M}"


class PurgeLease(models.Model):
    """Which worker is removing a deleted tenant, until when (accounts/deletion.py).

    A row, not a session-level advisory lock: behind a pooler in transaction mode a session
    lock stays on whichever server connection took it, held for ever when the unlock runs on
    another one (then every later purge of the tenant steps aside), or released under a worker
    that still purges. A lease is taken, renewed and given back by single statements, each
    its own transaction, and a dead worker's lease simply expires."""

    # "environment:12", "account:3".
    tenant = models.CharField(max_length=40, primary_key=True)
    holder = models.UUIDField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.tenant} until {self.expires_at:%H:%M:%S}"
