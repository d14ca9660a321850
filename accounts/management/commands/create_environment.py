from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account, Environment
from accounts.services import environment_create


class Command(BaseCommand):
    help = (
        "Create an environment (and its account if new) and print its client id and secret "
        "once. The secret cannot be shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="Account name (created if new).")
        parser.add_argument("--name", required=True, help="Environment name, e.g. production.")
        parser.add_argument(
            "--plan-monthly-limit",
            type=int,
            default=None,
            help="Monthly notification limit for a new account (default: unlimited).",
        )

    @transaction.atomic
    def handle(self, *args, account: str, name: str, plan_monthly_limit: int | None, **options):
        account_obj, _ = Account.objects.get_or_create(
            name=account, defaults={"plan_monthly_limit": plan_monthly_limit}
        )
        if Environment.objects.filter(account=account_obj, name=name).exists():
            raise CommandError(
                f"Account {account!r} already has an environment named {name!r}; choose "
                "another --name."
            )
        created = environment_create(account=account_obj, name=name)
        self.stdout.write(f"Environment {account_obj.name} / {name} created.")
        self.stdout.write(f"client id:     {created.obj.client_id}")
        self.stdout.write(f"client secret: {created.secret}")
        self.stdout.write("Store the secret now: it is encrypted at rest and not shown again.")
