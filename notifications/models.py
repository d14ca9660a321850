"""The catalogue (notification types and their channel templates) and user preferences.

Also the send pipeline's own tables: end users (identify), sub-notifications, per-environment
providers, send idempotency keys, the outbox, plan usage, the in-app feed and the sandbox's record.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.timezone import now

from accounts.crypto import secret_decrypt
from logs.vocabulary import Channel
from notifications.rendering import syntax_check


class NotificationType(models.Model):
    """A kind of notification an environment sends, keyed as NotificationAPI's
    `notificationId` (e.g. "order_tracking")."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="notification_types"
    )
    key = models.SlugField("notification id", max_length=100)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "key"], name="notification_type_unique")
        ]

    def __str__(self) -> str:
        return self.name or self.key


class ChannelTemplate(models.Model):
    """How a notification type renders on one channel (Liquid templates, as NotificationAPI's).
    `enabled` is the dashboard setting: a disabled channel is Ignored - Dashboard Preference."""

    notification_type = models.ForeignKey(
        NotificationType, on_delete=models.DB_CASCADE, related_name="templates"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(default=True)
    # Email: subject, html and text; SMS: text is the body; call: text is the script;
    # in-app: subject is the title, text the body.
    subject = models.TextField(blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["notification_type", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification_type", "channel"], name="channel_template_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.notification_type} / {self.get_channel_display()}"

    def clean(self) -> None:
        # A broken template would fail every send of the type: say so when it is saved.
        errors = {}
        for part in ("subject", "html", "text"):
            try:
                syntax_check(getattr(self, part) or "")
            except ValueError as exc:
                errors[part] = f"This {exc}."
        if errors:
            raise ValidationError(errors)


class UserPreference(models.Model):
    """An end user's choice for a notification type (optionally one channel, optionally one
    sub-notification), as NotificationAPI's set_user_preferences sends it."""

    class Delivery(models.TextChoices):
        OFF = "off", "Off"
        INSTANT = "instant", "Instant"
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="user_preferences"
    )
    user_id = models.CharField(max_length=255)
    notification_type = models.CharField("notification id", max_length=100)
    # Empty: the preference applies to every channel of the type.
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    sub_notification_id = models.CharField(max_length=255, blank=True)
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.INSTANT)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user_id", "notification_type", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "user_id", "notification_type", "channel",
                        "sub_notification_id"],
                name="user_preference_unique",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        channel = self.get_channel_display() if self.channel else "all channels"
        return f"{self.user_id}: {self.notification_type} ({channel}) {self.get_delivery_display()}"


class EndUser(models.Model):
    """An end user as the integrator identified them (NotificationAPI's identify_user): the
    addresses a send falls back to when it omits them."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="end_users"
    )
    user_id = models.CharField("user id", max_length=255)
    email = models.CharField(max_length=320, blank=True)
    # E.164 (logs.phone.phone_normalize), like the log's numbers.
    number = models.CharField("phone number", max_length=32, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    push_tokens = models.JSONField(default=list, blank=True)
    web_push_tokens = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["user_id"]
        verbose_name = "end user"
        constraints = [
            models.UniqueConstraint(fields=["environment", "user_id"], name="end_user_unique")
        ]

    def __str__(self) -> str:
        return self.user_id


class SubNotification(models.Model):
    """A category within a notification type that a user can turn off on its own
    (NotificationAPI's subNotificationId), e.g. one per project a user follows."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="sub_notifications"
    )
    notification_type = models.CharField("notification id", max_length=100)
    sub_notification_id = models.CharField("sub-notification id", max_length=255)
    title = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["notification_type", "sub_notification_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "notification_type", "sub_notification_id"],
                name="sub_notification_unique",
            )
        ]

    def __str__(self) -> str:
        return self.title or self.sub_notification_id


# Which providers can carry which channel (the console and the start-up check use it; the
# providers themselves are in notifications/providers/, which re-exports this).
PROVIDERS_BY_CHANNEL: dict[str, tuple[str, ...]] = {
    Channel.EMAIL: ("email", "sandbox", "none"),
    Channel.SMS: ("twilio", "sandbox", "none"),
    Channel.CALL: ("twilio", "sandbox", "none"),
    Channel.IN_APP: ("in_app",),
    Channel.PUSH: ("none",),
    Channel.WEB_PUSH: ("none",),
}


class ChannelProvider(models.Model):
    """An environment's choice of provider for one channel, overriding the settings'
    SEND_PROVIDER_<CHANNEL> (e.g. the sandbox for a staging environment)."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="channel_providers"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    provider = models.CharField(max_length=20)

    class Meta:
        ordering = ["environment", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "channel"], name="channel_provider_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.provider}"

    def clean(self) -> None:
        allowed = PROVIDERS_BY_CHANNEL.get(self.channel, ())
        if self.provider not in allowed:
            raise ValidationError(
                {
                    "provider": f"{self.provider!r} cannot send {self.get_channel_display()}: "
                    f"use {' or '.join(allowed)}."
                }
            )


class TwilioCredentials(models.Model):
    """An environment's own Twilio account, set in the console: its SMS and calls are sent
    with it, and its status callbacks (which carry `?env=<client id>`) are verified with its
    auth token. What is left empty falls back to the settings: no account SID and token, the
    install's TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN; no from number, TWILIO_FROM_NUMBER.

    The token is write-only: stored encrypted (accounts/crypto.py, under
    SECRETS_ENCRYPTION_KEY), never shown back or logged; the console says only whether one is
    set. Written through notifications.services.upkeep.twilio_auth_token_set."""

    environment = models.OneToOneField(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="twilio_credentials"
    )
    account_sid = models.CharField(
        "account SID",
        max_length=34,
        blank=True,
        validators=[
            RegexValidator(
                r"^AC[0-9a-fA-F]{32}$",
                "A Twilio account SID is AC followed by 32 hexadecimal digits (the Twilio "
                "console's Account Info shows it).",
            )
        ],
        help_text="Empty: the install's TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.",
    )
    # Fernet token of the auth token; empty when the environment has none of its own.
    auth_token_encrypted = models.TextField(blank=True, editable=False)
    from_number = models.CharField(
        "from number",
        max_length=32,
        blank=True,
        validators=[
            RegexValidator(
                r"^\+[1-9][0-9]{6,14}$",
                "Enter the number in E.164 form: + and the country code, e.g. +15005550006.",
            )
        ],
        help_text="The number SMS and calls come from; empty: the install's TWILIO_FROM_NUMBER.",
    )
    updated_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["environment"]
        verbose_name = "Twilio credentials"
        verbose_name_plural = "Twilio credentials"

    def __str__(self) -> str:
        return f"Twilio credentials of {self.environment}"

    @property
    def has_auth_token(self) -> bool:
        return bool(self.auth_token_encrypted)

    def auth_token_decrypted(self) -> str:
        """The plain auth token ("" when none is set). ValueError when no configured key of
        SECRETS_ENCRYPTION_KEY decrypts it."""
        return secret_decrypt(self.auth_token_encrypted) if self.auth_token_encrypted else ""

    def clean(self) -> None:
        # The SID and the token are one credential: Twilio's API takes them as a pair, and a
        # token without its account would sign callbacks no send of ours asked for.
        if self.account_sid and not self.auth_token_encrypted:
            raise ValidationError(
                {
                    "account_sid": "An account SID needs its auth token: enter the auth token, "
                    "or clear the account SID to use the install's Twilio account."
                }
            )
        if self.auth_token_encrypted and not self.account_sid:
            raise ValidationError(
                {
                    "account_sid": "An auth token needs its account SID: enter the SID of the "
                    "Twilio account the token belongs to, or clear the token."
                }
            )


def sender_domain_normalize(domain: str) -> str:
    """A domain as stored and compared: lowercase, no surrounding space or trailing dot."""
    return domain.strip().rstrip(".").lower()


class SenderDomain(models.Model):
    """A domain an environment's emails may come from (options.email.fromAddress and the inline
    email.senderEmail). The install's DEFAULT_FROM_EMAIL domain is always allowed; any other
    From is refused unless its domain is listed here for the environment.

    "Verified" means an owner of the account added it in the console: this install cannot
    check DNS, so an owner vouches that the account controls the domain (and has set up its
    SPF/DKIM for the provider). Only owners add, change or delete them (notifications/admin.py).
    """

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="sender_domains"
    )
    domain = models.CharField(
        max_length=253,
        validators=[
            RegexValidator(
                r"(?i)^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$",
                "Enter a domain name such as mail.example.com (no @, no scheme, no path; "
                "a non-ASCII name in its xn-- form).",
            )
        ],
        help_text="The exact domain after the @ of the From address, e.g. mail.example.com "
        "(subdomains are not included: add each one). Verified here means an owner of the "
        "account vouches that it controls the domain: this install does not check DNS, so add "
        "only domains your company owns, with SPF and DKIM set up for the email provider.",
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DB_SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["environment", "domain"]
        verbose_name = "verified sender domain"
        constraints = [
            models.UniqueConstraint(fields=["environment", "domain"], name="sender_domain_unique")
        ]

    def __str__(self) -> str:
        return self.domain

    def clean(self) -> None:
        self.domain = sender_domain_normalize(self.domain or "")


class SendIdempotencyKey(models.Model):
    """An `Idempotency-Key` a send used, and the notification it created. Unpartitioned (a
    key is unique across days); rows older than LOG_RETENTION_DAYS are purged nightly."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+"
    )
    key = models.CharField(max_length=255)
    notification_id = models.UUIDField("tracking id")
    # SHA-256 of the request body (canonical JSON): a repeat with another body is refused.
    # Empty for keys stored before it was kept.
    request_hash = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment", "key"], name="send_idempotency_unique")
        ]
        indexes = [models.Index(fields=["created_at"], name="send_idempotency_created")]

    def __str__(self) -> str:
        return self.key


class Outbox(models.Model):
    """A notification accepted but not yet dispatched: the durable hand-off to Celery.

    Written in the send's transaction, deleted when dispatch has finished. The sweeper
    re-enqueues a row whose `next_sweep_at` passed: no worker took it (broker down, message
    lost), its worker died mid-dispatch (the lease ran out), or its scheduled time came.
    """

    notification_id = models.UUIDField("tracking id", unique=True)
    notification_created_at = models.DateTimeField()
    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+"
    )
    # When dispatch may start (the schedule, else the send's time).
    due_at = models.DateTimeField()
    # When the sweeper next looks at the row: due_at plus a grace period, or the end of a
    # running dispatch's lease.
    next_sweep_at = models.DateTimeField()
    sweeps = models.PositiveIntegerField(default=0)
    # The plan's monthly count includes this notification (counted once, even if re-run).
    plan_counted = models.BooleanField(default=False)
    # The dispatch running it (a token of that run) and when its claim ends unless renewed:
    # one worker at a time, with nothing held on the database connection between
    # transactions (a pooler in transaction mode shares those), and a dead worker's claim
    # simply runs out (notifications.outbox).
    claimed_by = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name_plural = "outbox"
        indexes = [models.Index(fields=["next_sweep_at"], name="outbox_next_sweep")]

    def __str__(self) -> str:
        return str(self.notification_id)


class PlanUsage(models.Model):
    """Notifications an account sent in a calendar month (UTC), counted at dispatch so the
    plan limit is one indexed row, not a COUNT over the log."""

    account = models.ForeignKey("accounts.Account", on_delete=models.DB_CASCADE, related_name="+")
    month = models.DateField()  # the first day of the month
    notifications = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "month"], name="plan_usage_unique")
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.notifications}"


class InAppNotification(models.Model):
    """One item of a user's in-app feed (the in-app channel's "provider")."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+"
    )
    user_id = models.CharField(max_length=255)
    notification_id = models.UUIDField("tracking id")
    notification_created_at = models.DateTimeField()
    notification_type = models.CharField(max_length=100)
    sub_notification_id = models.CharField(max_length=255, blank=True)
    title = models.TextField(blank=True)
    url = models.TextField(blank=True)
    image = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)
    # First fetched by the user's client (Delivered), opened, clicked, archived.
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "in-app notification"
        constraints = [
            models.UniqueConstraint(fields=["notification_id"], name="in_app_notification_unique")
        ]
        indexes = [
            models.Index(
                "environment", "user_id", models.F("created_at").desc(), name="in_app_feed"
            ),
            # The nightly purge's range (send_tables_purge).
            models.Index(fields=["notification_created_at"], name="in_app_notification_created"),
        ]

    def __str__(self) -> str:
        return self.title or str(self.notification_id)


class SandboxMessage(models.Model):
    """What the sandbox provider accepted: the stand-in for a provider's own record, so the
    demo and the tests can see what "went out" (and count duplicates)."""

    environment = models.ForeignKey(
        "accounts.Environment", on_delete=models.DB_CASCADE, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    provider_message_id = models.CharField(max_length=64, unique=True)
    notification_id = models.UUIDField("tracking id")
    destination = models.CharField(max_length=320)
    subject = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        indexes = [
            models.Index(fields=["notification_id"], name="sandbox_message_notif"),
            # The nightly purge's range (send_tables_purge).
            models.Index(fields=["created_at"], name="sandbox_message_created"),
        ]

    def __str__(self) -> str:
        return self.provider_message_id
