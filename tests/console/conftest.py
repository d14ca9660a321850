"""Console fixtures: accounts with members of each role, and notifications written through
the log's own services (logs.services), as the pipeline and callbacks write them."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import Membership
from logs.services import event_record, notification_create
from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory

PASSWORD = "correct horse battery staple"
SENDER = "Example App <no-reply@app.example.com>"


def console_user(environment, role=Membership.Role.SUPPORT, username=None):
    """A staff member of the environment's account with the demo Support group's rights."""
    user = UserFactory(username=username or f"{role}-{environment.account_id}")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["logs", "console", "notifications", "webhooks"],
            codename__startswith="view_",
        )
    )
    MembershipFactory(user=user, account=environment.account, role=role)
    return user


def bounced_email(environment, *, user_id="usr_alice", email="alice@example.com", created_at=None,
                  merge_tags=None, html=None, subject="Reset your password"):  # fmt: skip
    """A password-reset email that bounced: Received, Sending, Sent, Failed - Bounce."""
    created_at = created_at or timezone.now() - timedelta(minutes=5)
    merge_tags = merge_tags or {"first_name": "Alice", "reset_token": "tok_5ecr3t_abcdef"}
    link = f"https://app.example.com/reset?token={merge_tags.get('reset_token', '')}"
    notification = notification_create(
        environment_id=environment.id,
        notification_type="password_reset",
        user_id=user_id,
        email=email,
        number="+14155550100",
        merge_tags=merge_tags,
        request={
            "type": "password_reset",
            "to": {"id": user_id, "email": email},
            "parameters": merge_tags,
        },
        created_at=created_at,
    )
    common = {"notification_id": notification.id, "channel": "email",
              "notification_created_at": created_at}  # fmt: skip
    event_record(
        **common,
        kind="sending",
        source="pipeline",
        occurred_at=created_at + timedelta(seconds=1),
        # The envelope the pipeline keeps beside the delivery (notifications.sending).
        payload={"from": SENDER, "to": [email], "cc": [], "bcc": [], "reply_to": []},
    )
    event_record(
        **common,
        kind="sent",
        source="pipeline",
        occurred_at=created_at + timedelta(seconds=2),
        delivery_fields={
            "provider": "sandbox",
            "provider_message_id": f"sbx-{notification.id.hex[:12]}",
            # Blank, as dispatch stores it: the notification's own email, not stored twice.
            "destination": "",
            "subject": subject,
            "html": html
            or f'<h1>Hi Alice</h1><p><a href="{link}">Reset it here</a></p>'
            '<img src="https://tracker.example.net/pixel.gif">',
            "text": f"Hi Alice, reset it here: {link}",
        },
    )
    event_record(
        **common,
        kind="failed",
        sub_kind="bounce",
        source="sandbox",
        occurred_at=created_at + timedelta(seconds=9),
        detail="550 5.1.1 mailbox unavailable",
        payload={"event": "bounced", "recipient": email, "token_echo": link},
        delivery_fields={"error_code": "550", "error_message": "Mailbox does not exist"},
    )
    notification.refresh_from_db()
    return notification


@pytest.fixture
def tenants(db):
    mine, theirs = EnvironmentFactory(name="production"), EnvironmentFactory(name="production")
    return mine, theirs
