from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and credentials"

    def ready(self) -> None:
        from accounts.authentication import credentials_cache
        from accounts.models import Account, ApiKey, Environment

        # A rotated secret, a revoked key, a renamed account: refused or shown at once here,
        # within HOT_CACHE_SECONDS in other processes (config/hotcache.py).
        for model in (Account, Environment, ApiKey):
            for signal in (post_save, post_delete):
                signal.connect(
                    credentials_cache.clear,
                    sender=model,
                    dispatch_uid=f"accounts.credentials_cache.{model.__name__}.{signal}",
                )
