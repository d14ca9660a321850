from django.apps import AppConfig
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save


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
        from accounts import receivers

        # Console sessions and two-factor logins (accounts/sessions.py, two_factor.py).
        user_logged_in.connect(receivers.on_user_logged_in, dispatch_uid="accounts.logged_in")
        user_logged_out.connect(receivers.on_user_logged_out, dispatch_uid="accounts.logged_out")
        pre_save.connect(
            receivers.on_user_pre_save,
            sender=get_user_model(),
            dispatch_uid="accounts.password_changed",
        )
