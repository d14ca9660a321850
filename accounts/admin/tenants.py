"""The admins of the tenants and their credentials: accounts, environments (their client
secrets) and API keys. A deleted account or environment goes in the background
(accounts/deletion.py)."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from accounts.admin.bases import ShowsSecretOnce, TenantScopedAdmin
from accounts.deletion import account_delete, environment_delete
from accounts.models import Account, ApiKey, Environment, Membership
from accounts.selectors import account_list_for_user, account_roles_for_user
from accounts.services import api_key_issue, api_key_revoke, environment_secret_issue


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
    list_display = ["name", "plan_monthly_limit", "viewer_addresses", "created_at"]
    search_fields = ["name"]
    show_full_result_count = False
    account_path = "pk"

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
        readonly = [*self.readonly_fields, "plan_monthly_limit"]
        # What viewers see of addresses, and requiring a second factor of every member, are
        # the owners' choices: admins read them.
        role = account_roles_for_user(user=request.user).get(obj.pk) if obj else None
        if role != Membership.Role.OWNER:
            readonly += ["viewer_addresses", "require_two_factor"]
        return readonly


@admin.register(Environment)
class EnvironmentAdmin(ShowsSecretOnce, TenantScopedAdmin):
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
            self.secret_keep(
                request,
                title=f"Environment {obj} created",
                secrets_shown=[(f"Client secret of client id {obj.client_id}", secret)],
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
        rotated = [
            (f"New client secret of {environment} (client id {environment.client_id})",
             environment_secret_issue(environment=environment))
            for environment in managed
        ]  # fmt: skip
        if rotated:
            return HttpResponseRedirect(
                self.secret_keep(request, title="Client secrets rotated", secrets_shown=rotated)
            )
        return None


@admin.register(ApiKey)
class ApiKeyAdmin(ShowsSecretOnce, TenantScopedAdmin):
    list_display = ["prefix", "name", "environment", "scopes", "masked", "created_at",
                    "last_used_at", "revoked_at"]  # fmt: skip
    list_select_related = ["environment__account"]
    list_filter = ["revoked_at"]
    search_fields = ["=prefix", "name"]
    fields = ["environment", "name", "scopes", "masked", "prefix", "created_at", "last_used_at",
              "revoked_at"]  # fmt: skip
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]
    show_full_result_count = False
    environment_path = "environment"

    def save_model(self, request, obj, form, change):
        plain = None if change else api_key_issue(api_key=obj)
        super().save_model(request, obj, form, change)
        if plain:
            self.secret_keep(
                request,
                title=f"API key {obj.prefix}… created",
                secrets_shown=[(f"API key for {obj.environment}", plain)],
            )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        managed = self.managed(request, queryset)
        self.skipped_message(request, queryset.count() - managed.count())
        revoked = [api_key_revoke(api_key=api_key) for api_key in managed]
        messages.success(request, f"Revoked {len(revoked)} key(s).")
