"""Set up the demo that `make run` serves: an account, its production environment, a
superuser and a support user. Creates only what is missing, so a second run changes nothing;
passwords and the client secret are printed only when created. `make run` then fills the
account (demo_populate, in the demo app). Refused in production."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.groups import support_group_sync
from accounts.models import Account, Environment, Membership
from accounts.services import environment_create

DEMO_ACCOUNT = "Demo"


class Command(BaseCommand):
    help = "Create the demo account, environment, superuser and support user if missing."

    @transaction.atomic
    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError(
                "bootstrap_demo creates users with printed passwords and is refused in "
                "production. Use createsuperuser and create_environment instead."
            )
        account, account_created = Account.objects.get_or_create(name=DEMO_ACCOUNT)
        if not Environment.objects.filter(account=account, name="production").exists():
            created = environment_create(account=account, name="production")
            self.stdout.write(
                f"Demo environment 'production': client id {created.obj.client_id}, "
                f"client secret {created.secret}"
            )
        group = support_group_sync()
        users = get_user_model().objects
        if not users.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser("admin", "admin@example.com", password)
            self.stdout.write(f"Superuser created: admin / {password}")
        if not users.filter(username="support").exists():
            password = secrets.token_urlsafe(12)
            support = users.create_user("support", "support@example.com", password, is_staff=True)
            support.groups.add(group)
            Membership.objects.create(user=support, account=account, role=Membership.Role.SUPPORT)
            self.stdout.write(f"Support user created: support / {password}")
        if account_created:
            self.stdout.write(
                f"The {DEMO_ACCOUNT} account is filled once the server answers (a week of "
                "notifications, then live sends: manage.py demo_populate, which make run runs)."
            )
