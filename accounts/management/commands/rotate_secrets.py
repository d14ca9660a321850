from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.services import SecretsUnreadable, environment_secrets_reencrypt, secret_reencrypters


class Command(BaseCommand):
    help = (
        "Re-encrypt every environment client secret and every environment's Twilio auth token "
        "under the newest key of SECRETS_ENCRYPTION_KEY (the first), so older keys can be "
        "removed. Idempotent; all or nothing; prints counts, never secrets. API keys are "
        "stored hashed and need no rotation."
    )

    def handle(self, *args, **options):
        try:
            # One transaction: the old keys may go only once every secret has moved.
            with transaction.atomic():
                secrets = environment_secrets_reencrypt()
                # The other apps' secrets (the Twilio auth tokens), registered in their
                # AppConfig.ready (accounts.services.secret_reencrypter_register).
                others = {name: reencrypt() for name, reencrypt in secret_reencrypters.items()}
        except SecretsUnreadable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Re-encrypted {secrets.reencrypted} client secret(s) under the newest key; "
            f"{secrets.already_current} already were. "
            + "".join(
                f"Re-encrypted {done.reencrypted} {name}(s); {done.already_current} already were. "
                for name, done in others.items()
            )
            + "Every secret now reads with the first key of SECRETS_ENCRYPTION_KEY alone: the "
            "others can be removed."
        )
