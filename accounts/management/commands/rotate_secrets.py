from django.core.management.base import BaseCommand, CommandError

from accounts.services import SecretsUnreadable, environment_secrets_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every environment client secret under the newest key of "
        "SECRETS_ENCRYPTION_KEY (the first), so older keys can be removed. Idempotent; prints "
        "counts, never secrets. API keys are stored hashed and need no rotation."
    )

    def handle(self, *args, **options):
        try:
            result = environment_secrets_reencrypt()
        except SecretsUnreadable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Re-encrypted {result.reencrypted} client secret(s) under the newest key; "
            f"{result.already_current} already were. Every secret now reads with the first key "
            "of SECRETS_ENCRYPTION_KEY alone: the others can be removed."
        )
