"""A demo that holds together: what `make run`'s demo_populate writes (demo/), and the
development mailbox (config/mailbox.py)."""

import io
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from demo.catalogue import TYPES
from demo.services import demo_catalogue_install, demo_environment, demo_seed
from insights.models import HourlyRollup
from logs.models import Delivery, Notification
from logs.vocabulary import DeliveryState
from notifications.models import ChannelTemplate, NotificationType


@pytest.fixture
def pipeline(settings):
    """Sends dispatch in-process through the sandbox, whose callbacks go nowhere."""
    from config.celery import app as celery_app

    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # a closed port
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def demo(db):
    call_command("bootstrap_demo", stdout=io.StringIO())
    environment = demo_environment()
    demo_catalogue_install(environment=environment)
    return environment


@pytest.mark.django_db
def test_every_seeded_type_is_in_the_catalogue_with_a_template_on_each_seeded_channel(demo):
    demo_seed(environment=demo, notifications=400, days=7)

    seeded = Counter(
        # Both sides named by environment: on Citus the join then runs on one shard.
        Delivery.objects.filter(
            environment_id=demo.id, notification__environment_id=demo.id
        ).values_list("notification__notification_type", "channel")
    )
    templates = set(
        ChannelTemplate.objects.filter(notification_type__environment=demo).values_list(
            "notification_type__key", "channel"
        )
    )
    assert {kind.key for kind in TYPES} <= set(
        NotificationType.objects.filter(environment=demo).values_list("key", flat=True)
    )
    assert set(seeded) <= templates, set(seeded) - templates
    assert len({key for key, _ in seeded}) == len(TYPES)  # 400 draws reach every type


@pytest.mark.django_db
def test_resend_of_a_seeded_notification_of_every_type_goes_out(
    demo, pipeline, django_capture_on_commit_callbacks
):
    """Resend sends the stored request again with the catalogue's templates: every merge tag
    a template names must be in the seeded request (password_reset once failed on
    first_name)."""
    from console.services import notification_resend

    demo_seed(environment=demo, notifications=400, days=7)
    admin = get_user_model().objects.get(username="admin")
    for kind in TYPES:
        original = Notification.objects.filter(
            environment_id=demo.id, notification_type=kind.key
        ).first()
        with django_capture_on_commit_callbacks(execute=True):
            resent_id = notification_resend(notification=original, user=admin)
        deliveries = Delivery.objects.filter(notification_id=resent_id)
        states = {d.channel: (d.state, d.error_message) for d in deliveries}
        assert set(states) == set(kind.channels), kind.key
        for channel, (state, error) in states.items():
            # Sent (the sandbox's callbacks go nowhere here; in-app is Delivered once in the
            # feed) or Ignored by a user's preference; never Failed on a template.
            assert state in (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.IGNORED), (
                kind.key,
                channel,
                error,
            )


@pytest.mark.django_db
def test_the_seeded_week_has_its_insights_rollups(demo):
    seeded = demo_seed(environment=demo, notifications=300, days=7)

    hours = HourlyRollup.objects.filter(environment_id=demo.id).values_list("hour", flat=True)
    assert seeded.rollup_rows == len(hours) > 0
    assert (max(hours) - min(hours)).days >= 6  # the whole week, not only today
    received = sum(
        HourlyRollup.objects.filter(environment_id=demo.id, channel="").values_list(
            "received", flat=True
        )
    )
    assert received == 300


@pytest.mark.django_db
def test_demo_populate_runs_once(demo, pipeline, django_capture_on_commit_callbacks):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo_populate", notifications=200, days=2, stdout=out)
    assert "demo: seeding the Demo account, 200 / 200 notifications" in out.getvalue()
    count = Notification.objects.filter(environment_id=demo.id).count()
    assert count > 200  # the seeded ones and the live sends

    again = io.StringIO()
    call_command("demo_populate", stdout=again)
    assert "left as is" in again.getvalue()
    assert Notification.objects.filter(environment_id=demo.id).count() == count


# The development mailbox


@pytest.fixture
def mailbox(settings, tmp_path):
    settings.MAILERS = {"default": {"BACKEND": "config.mailbox.EmailBackend", "OPTIONS": {}}}
    settings.MAILBOX_DIR = str(tmp_path)
    settings.MAILBOX_ENABLED = True
    return tmp_path


@pytest.mark.django_db
def test_an_email_sent_through_the_email_provider_lands_in_the_mailbox_superusers_read(
    client, admin_user, mailbox
):
    from django.core.mail import EmailMultiAlternatives

    message = EmailMultiAlternatives(
        subject="Reset your password", body="Hi Ann", to=["ann@example.com"]
    )
    message.attach_alternative("<p>Hi <b>Ann</b></p>", "text/html")
    assert message.send() == 1
    (stored,) = mailbox.glob("*.eml")

    client.force_login(admin_user)
    listing = client.get("/admin/mailbox/").content.decode()
    assert "ann@example.com" in listing and "Reset your password" in listing
    opened = client.get(f"/admin/mailbox/{stored.stem}/").content.decode()
    assert "Hi Ann" in opened
    assert 'sandbox="" srcdoc="&lt;p&gt;Hi &lt;b&gt;Ann&lt;/b&gt;&lt;/p&gt;' in opened


@pytest.mark.django_db
def test_the_mailbox_is_for_superusers_only(client, mailbox):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True))
    assert client.get("/admin/mailbox/").status_code == 403
    client.logout()
    assert client.get("/admin/mailbox/").status_code == 302  # to the console's login
