from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey, Environment
from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an environment and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--client-id", required=True, help="The environment's client id.")
        parser.add_argument(
            "--scope",
            action="append",
            choices=ApiKey.Scope.values,
            required=True,
            help="A scope the key grants; repeat for several (send, read, manage).",
        )
        parser.add_argument("--name", default="", help="A label shown in the console.")

    def handle(self, *args, client_id: str, scope: list[str], name: str, **options):
        environment = Environment.objects.filter(client_id=client_id).first()
        if environment is None:
            raise CommandError(
                f"No environment has client id {client_id!r}. List them in the console under "
                "Environments, or create one with manage.py create_environment."
            )
        created = api_key_create(environment=environment, scopes=scope, name=name)
        self.stdout.write(
            f"API key {created.obj.prefix}… for {environment} with scopes "
            f"{', '.join(created.obj.scopes)}:"
        )
        self.stdout.write(created.secret)
        self.stdout.write("Store it now: only its hash is kept and it is not shown again.")
