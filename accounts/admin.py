from functools import reduce

from django.contrib import admin, messages
from django.http import Http404

from accounts.deletion import account_delete, environment_delete
from accounts.models import Account, ApiKey, Environment, Membership
from accounts.selectors import MANAGER_ROLES, account_list_for_user, environment_list_for_user
from accounts.services import api_key_issue, api_key_revoke, environment_secret_issue


class TenantScopedAdmin(admin.ModelAdmin):
    """Narrows foreign-key choices to the user's own accounts and environments, and answers
    404 for an object outside them (get_queryset is scoped), as for one that does not
    exist: never a redirect or a 403 that would confirm it exists.

    Set `environment_path` (the lookup from the model to its Environment) or `account_path`
    (to its Account) and the list holds only rows of the user's accounts. Django's model
    permissions say what a user may do at all; the role says where: only an account's owners
    and admins (MANAGER_ROLES) change, delete or add its rows, others see them read-only."""

    environment_path: str | None = None
    account_path: str | None = None

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.environment_path:
            environments = environment_list_for_user(user=request.user)
            return queryset.filter(**{f"{self.environment_path}__in": environments})
        if self.account_path:
            accounts = account_list_for_user(user=request.user)
            return queryset.filter(**{f"{self.account_path}__in": accounts})
        return queryset

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with this id in your accounts.")
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Rows can be attached only to accounts the user manages.
        if db_field.related_model is Account:
            kwargs["queryset"] = account_list_for_user(user=request.user, roles=MANAGER_ROLES)
        elif db_field.related_model is Environment:
            kwargs["queryset"] = environment_list_for_user(user=request.user, roles=MANAGER_ROLES)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def account_lookup(self) -> str:
        """The lookup from this model to its Account ("" for Account itself)."""
        if self.environment_path:
            return f"{self.environment_path}__account"
        return self.account_path or ""

    def managed(self, request, queryset):
        """The rows of `queryset` in accounts the user manages."""
        if request.user.is_superuser:
            return queryset
        accounts = account_list_for_user(user=request.user, roles=MANAGER_ROLES)
        lookup = self.account_lookup()
        return queryset.filter(**{f"{lookup}__in" if lookup else "pk__in": accounts})

    def _manages(self, request, obj) -> bool:
        if request.user.is_superuser:
            return True
        path = self.account_lookup()
        account = reduce(getattr, path.split("__"), obj) if path else obj
        managed = account_list_for_user(user=request.user, roles=MANAGER_ROLES)
        return managed.filter(pk=account.pk).exists()

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or self._manages(request, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or self._manages(request, obj))

    def skipped_message(self, request, skipped: int) -> None:
        if skipped:
            messages.warning(
                request,
                f"Skipped {skipped} row(s) of accounts where you are not an owner or admin.",
            )


def background_deletion_summary(objs) -> tuple[list, dict, set, list]:
    """What the delete confirmation page lists for a tenant. Django's default collects every
    related row to show it, here every log row (millions, loaded into memory, and refused for
    want of a delete permission on the read-only logs); the logs are removed in the
    background instead (accounts/deletion.py), so the page says so and collects nothing."""
    note = "its logs, API keys and settings are removed in the background"
    shown = [f"{obj} ({note})" for obj in objs]
    return shown, {}, set(), []


@admin.register(Account)
class AccountAdmin(TenantScopedAdmin):
    list_display = ["name", "plan_monthly_limit", "created_at"]
    search_fields = ["name"]
    show_full_result_count = False

    def get_queryset(self, request):
        return account_list_for_user(user=request.user)

    def get_deleted_objects(self, objs, request):
        return background_deletion_summary(objs)

    def delete_model(self, request, obj):
        # Hidden at once; its environments' logs are removed in the background.
        account_delete(account=obj)

    def delete_queryset(self, request, queryset):
        for account in queryset:
            account_delete(account=account)

    def get_readonly_fields(self, request, obj=None):
        # The plan is the operator's to set, not the tenant's own members'.
        if request.user.is_superuser:
            return self.readonly_fields
        return [*self.readonly_fields, "plan_monthly_limit"]


@admin.register(Environment)
class EnvironmentAdmin(TenantScopedAdmin):
    list_display = ["name", "account", "client_id", "created_at"]
    list_select_related = ["account"]
    search_fields = ["name", "=client_id"]
    readonly_fields = ["client_id", "created_at"]
    actions = ["rotate_client_secret"]
    show_full_result_count = False
    account_path = "account"

    def save_model(self, request, obj, form, change):
        secret = None if change else environment_secret_issue(environment=obj, save=False)
        super().save_model(request, obj, form, change)
        if secret:
            messages.warning(
                request,
                f"Client id {obj.client_id}, client secret {secret}. Copy the secret now: it is "
                "stored encrypted and will not be shown again.",
            )

    def get_deleted_objects(self, objs, request):
        return background_deletion_summary(objs)

    def delete_model(self, request, obj):
        # Hidden and refused at once; its logs are removed in the background.
        environment_delete(environment=obj)

    def delete_queryset(self, request, queryset):
        for environment in queryset:
            environment_delete(environment=environment)

    @admin.action(description="Rotate client secret (the old one stops working)")
    def rotate_client_secret(self, request, queryset):
        managed = self.managed(request, queryset)
        self.skipped_message(request, queryset.count() - managed.count())
        for environment in managed:
            secret = environment_secret_issue(environment=environment)
            messages.warning(
                request,
                f"New client secret for {environment}: {secret}. Copy it now: it will not be "
                "shown again.",
            )


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ["prefix", "name", "environment", "scopes", "created_at", "last_used_at",
                    "revoked_at"]  # fmt: skip
    list_select_related = ["environment__account"]
    list_filter = ["revoked_at"]
    search_fields = ["=prefix", "name"]
    fields = ["environment", "name", "scopes", "prefix", "created_at", "last_used_at",
              "revoked_at"]  # fmt: skip
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]
    show_full_result_count = False
    environment_path = "environment"

    def save_model(self, request, obj, form, change):
        plain = None if change else api_key_issue(api_key=obj)
        super().save_model(request, obj, form, change)
        if plain:
            messages.warning(
                request,
                f"API key {plain}. Copy it now: only its hash is stored and it will not be "
                "shown again.",
            )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        managed = self.managed(request, queryset)
        self.skipped_message(request, queryset.count() - managed.count())
        revoked = [api_key_revoke(api_key=api_key) for api_key in managed]
        messages.success(request, f"Revoked {len(revoked)} key(s).")


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["user", "account", "role", "created_at"]
    list_select_related = ["user", "account"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "account__name"]
    show_full_result_count = False
    account_path = "account"
    # A dropdown would list every user of every tenant: the user is entered by id instead.
    raw_id_fields = ["user"]
