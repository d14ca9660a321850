import secrets
from functools import reduce

# Registers axes's admins, which are narrowed to superusers at the end of this module.
import axes.admin  # noqa: F401
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.deletion import account_delete, environment_delete
from accounts.invitations import invitation_create, invitation_renew, invitation_revoke
from accounts.models import Account, ApiKey, Environment, Invitation, Membership
from accounts.selectors import (
    MANAGER_ROLES,
    account_list_for_user,
    account_roles_for_user,
    environment_list_for_user,
    member_is_manageable_by,
    member_list_for_user,
    role_manages,
)
from accounts.services import api_key_issue, api_key_revoke, environment_secret_issue
from accounts.two_factor import (
    RESET_REFUSED,
    TwoFactorRefused,
    two_factor_reset,
    two_factor_resettable_by,
)
from config.admin_display import moment_text


def _lookup_target(model, lookup: str):
    """The model a `__`-separated lookup from `model` leads to ("pk": the model itself)."""
    if lookup == "pk":
        return model
    for name in lookup.split("__"):
        field = model._meta.get_field(name)  # FieldDoesNotExist on a typo
        if field.related_model is None:
            raise FieldDoesNotExist(f"{model.__name__}.{name} is not a relation")
        model = field.related_model
    return model


class HidesOutsideUsersInHistory(admin.ModelAdmin):
    """Django's history page names who made each change. One who is not (or no longer) a
    member of the viewer's accounts, such as the install's own superusers, is not named to
    a tenant's member: no page shows a user outside the viewer's accounts."""

    OUTSIDE_USER = "someone outside your accounts"

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        context = getattr(response, "context_data", None)
        if request.user.is_superuser or not context or "action_list" not in context:
            return response
        page = context["action_list"]
        entries = list(page.object_list)
        shown = set(
            member_list_for_user(user=request.user)
            .filter(pk__in={entry.user_id for entry in entries})
            .values_list("pk", flat=True)
        )
        for entry in entries:
            if entry.user_id not in shown:
                # Unsaved and only rendered: the entry itself is never saved again.
                entry.user = get_user_model()(username=self.OUTSIDE_USER)
        page.object_list = entries
        return response


class TenantScopedAdmin(HidesOutsideUsersInHistory):
    """Narrows foreign-key choices to the user's own accounts and environments, and answers
    404 for an object outside them (get_queryset is scoped), as for one that does not
    exist: never a redirect or a 403 that would confirm it exists.

    Set `environment_path` (the lookup from the model to its Environment) or `account_path`
    (to its Account; "pk" on Account itself) and the list holds only rows of the user's
    accounts. Django's model permissions say what a user may do at all; the role says where:
    only an account's owners and admins (MANAGER_ROLES) change, delete or add its rows, others
    see them read-only.

    Scoping fails closed: an admin that names neither path (nor sets `not_tenant_data`, for a
    model that belongs to no tenant) stops start-up instead of listing every tenant's rows."""

    environment_path: str | None = None
    account_path: str | None = None
    # True only for a model that holds no tenant's data; say why next to it.
    not_tenant_data: bool = False

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        # Admins are built when the admin site is set up (django.setup()), so a forgotten
        # path stops every process at start-up: web, worker and manage.py alike.
        self._check_tenant_path()

    def _check_tenant_path(self) -> None:
        name = f"{type(self).__name__} (admin of {self.model._meta.label})"
        paths = {
            "environment_path": (self.environment_path, Environment),
            "account_path": (self.account_path, Account),
        }
        named = {attribute: value for attribute, value in paths.items() if value[0]}
        if self.not_tenant_data:
            if named:
                raise ImproperlyConfigured(
                    f"{name} sets not_tenant_data and {', '.join(named)}: choose one."
                )
            return
        if len(named) != 1:
            raise ImproperlyConfigured(
                f"{name} must set exactly one of environment_path (the lookup from the model to "
                "its Environment) or account_path (to its Account, 'pk' on Account itself), or "
                "not_tenant_data = True for a model that belongs to no tenant. Without it the "
                "console would show every tenant's rows."
            )
        [(attribute, (lookup, expected))] = named.items()
        try:
            target = _lookup_target(self.model, lookup)
        except FieldDoesNotExist as exc:
            target = f"nothing ({exc})"
        if target is not expected:
            raise ImproperlyConfigured(
                f"{name}.{attribute} = {lookup!r} must lead from {self.model.__name__} to "
                f"{expected.__name__}; it leads to {getattr(target, '__name__', target)}."
            )

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.environment_path:
            environments = environment_list_for_user(user=request.user)
            return queryset.filter(**{f"{self.environment_path}__in": environments})
        if self.account_path:
            accounts = account_list_for_user(user=request.user)
            return queryset.filter(**{f"{self.account_path}__in": accounts})
        if self.not_tenant_data:
            return queryset
        # Unreachable after __init__'s check; here so a later edit cannot fail open.
        raise ImproperlyConfigured(f"{type(self).__name__} names no tenant path.")

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
        """The lookup from this model to its Account ("pk" for Account itself)."""
        if self.environment_path:
            return f"{self.environment_path}__account"
        return self.account_path or ""

    def account_of(self, obj) -> Account:
        lookup = self.account_lookup()
        return obj if lookup == "pk" else reduce(getattr, lookup.split("__"), obj)

    def managed(self, request, queryset):
        """The rows of `queryset` in accounts the user manages."""
        if request.user.is_superuser or self.not_tenant_data:
            return queryset
        accounts = account_list_for_user(user=request.user, roles=MANAGER_ROLES)
        return queryset.filter(**{f"{self.account_lookup()}__in": accounts})

    def _manages(self, request, obj) -> bool:
        if request.user.is_superuser or self.not_tenant_data:
            return True
        managed = account_list_for_user(user=request.user, roles=MANAGER_ROLES)
        return managed.filter(pk=self.account_of(obj).pk).exists()

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


class ShowsSecretOnce(admin.ModelAdmin):
    """Shows a new secret once, on a page of its own, never in a Django message: messages
    live in a cookie (the default storage), where a secret would sit readable in the browser
    and in any proxy's logs. The secret waits in the server-side session under a one-time
    token; the page takes it out as it shows it, with Cache-Control: no-store."""

    SESSION_PREFIX = "accounts.secret_once."

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_secret_once"
        view = self.admin_site.admin_view(self.secret_once_view)
        return [path("secret/<str:token>/", view, name=name), *super().get_urls()]

    def secret_keep(self, request, *, title: str, secrets_shown: list[tuple[str, str]]) -> str:
        """Keep (label, secret) pairs for one showing and return the page's address."""
        token = secrets.token_urlsafe(16)
        request.session[self.SESSION_PREFIX + token] = {"title": title, "secrets": secrets_shown}
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_secret_once"
        # On the request, so response_add can send the browser to the page after an add.
        request.secret_once_url = reverse(name, args=[token])
        return request.secret_once_url

    def response_add(self, request, obj, post_url_continue=None):
        url = getattr(request, "secret_once_url", None)
        if url:
            return HttpResponseRedirect(url)
        return super().response_add(request, obj, post_url_continue)

    def secret_once_view(self, request, token: str):
        shown = request.session.pop(self.SESSION_PREFIX + token, None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": shown["title"] if shown else "Secret no longer available",
            "secrets_shown": shown["secrets"] if shown else None,
            "changelist_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"
            ),
        }
        response = TemplateResponse(
            request, "admin/accounts/secret_once.html", context, status=200 if shown else 410
        )
        add_never_cache_headers(response)  # includes no-store: no cache keeps a copy
        return response


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


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["user", "account", "role", "two_factor_shown", "created_at"]
    list_select_related = ["user", "account"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "account__name"]
    show_full_result_count = False
    account_path = "account"
    # Superusers only pick the user (others never edit it, below); a dropdown would list every
    # user of the install, so it is entered by id.
    raw_id_fields = ["user"]
    # Who joins an account is the invited person's choice, not its managers': they invite an
    # address (InvitationAdmin). Picking a user by id let an account admin attach, and then
    # manage, any user of the install, and showed other tenants' usernames.
    SUPERUSER_ONLY_FIELDS = ["user", "account"]
    actions = ["reset_two_factor"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(two_factor_on=two_factor_on("user"))

    @admin.display(description="two-factor login", boolean=True)
    def two_factor_shown(self, obj) -> bool:
        return getattr(obj, "two_factor_on", False)

    @admin.action(
        description="Reset two-factor login of selected members (a lost phone)",
        permissions=["change"],
    )
    def reset_two_factor(self, request, queryset):
        # Who may reset whom is decided by the service (owners: non-owners of accounts they
        # own; superusers: anyone), not by the account this row belongs to.
        two_factor_reset_selected(request, [m.user for m in queryset.select_related("user")])

    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return readonly
        # Only the role changes: a membership is never moved to another user or account.
        return [*readonly, *self.SUPERUSER_ONLY_FIELDS]

    def _manages(self, request, obj) -> bool:
        # Beyond managing the account: only its owners touch an owner's membership.
        if not super()._manages(request, obj):
            return False
        if request.user.is_superuser:
            return True
        role = account_roles_for_user(user=request.user).get(obj.account_id)
        return role_manages(manager_role=role, member_role=obj.role)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return role_guarded_form(form, viewer=request.user, account=obj and obj.account)


def two_factor_on(user_path: str):
    """An annotation: whether the user at `user_path` has a confirmed authenticator app."""
    return Exists(TOTPDevice.objects.filter(user=OuterRef(user_path), confirmed=True))


def two_factor_reset_selected(request, members) -> None:
    """Reset the second factor of each of `members` the viewer may reset (a lost phone)."""
    members = list({member.pk: member for member in members}.values())
    reset = []
    for member in members:
        if not two_factor_resettable_by(user=request.user, member=member):
            continue
        try:
            two_factor_reset(user=request.user, member=member)
        except TwoFactorRefused:
            continue
        reset.append(member.get_username())
    if reset:
        messages.success(
            request,
            f"Reset the two-factor login of {', '.join(reset)}: their sessions ended; they set "
            "up a new app at their next sign-in.",
        )
    if len(reset) < len(members):
        messages.warning(request, f"Skipped {len(members) - len(reset)}: {RESET_REFUSED}")


def role_guarded_form(form, *, viewer, account: Account | None = None):
    """`form` (with a role field, and an account field or the row's `account`) refusing a
    role the viewer may not give there: an admin makes no owners (role_manages)."""

    class RoleGuardedForm(form):
        def clean(self):
            cleaned = super().clean()
            where, role = cleaned.get("account", account), cleaned.get("role")
            if viewer.is_superuser or not (where and role):
                return cleaned
            manager_role = account_roles_for_user(user=viewer).get(where.pk)
            if not role_manages(manager_role=manager_role, member_role=role):
                self.add_error(
                    "role",
                    f"Only an owner of {where} can make someone an owner: choose admin, "
                    "support or viewer, or ask an owner.",
                )
            return cleaned

    return RoleGuardedForm


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Invitations of the accounts the viewer manages (owners and admins; support and viewers
    do not see who is invited). An invitation is not edited: it is revoked, or sent again
    with a new link. Whoever may add memberships may invite: Django's membership permissions
    stand in for the invitation ones, so existing groups need no change."""

    list_display = ["email", "account", "role", "state_shown", "expires_at", "email_shown"]
    list_select_related = ["account"]
    list_filter = ["role"]
    search_fields = ["^email"]
    show_full_result_count = False
    account_path = "account"
    actions = ["revoke", "send_new_link"]
    ADD_FIELDS = ["account", "email", "role"]
    SHOWN_FIELDS = ["account", "email", "role", "state_shown", "created_at", "expires_at",
                    "email_shown", "accepted_at", "revoked_at"]  # fmt: skip
    # The users an invitation names may since have left the viewer's accounts.
    SUPERUSER_FIELDS = ["invited_by", "accepted_by"]

    def get_queryset(self, request):
        invitations = super().get_queryset(request)
        if request.user.is_superuser:
            return invitations
        managed = account_list_for_user(user=request.user, roles=MANAGER_ROLES)
        return invitations.filter(account__in=managed)

    def _has(self, request, action: str) -> bool:
        user = request.user
        return user.has_perm(f"accounts.{action}_invitation") or user.has_perm(
            f"accounts.{action}_membership"
        )

    def _manages_any(self, request) -> bool:
        if request.user.is_superuser:
            return True
        return account_list_for_user(user=request.user, roles=MANAGER_ROLES).exists()

    def has_view_permission(self, request, obj=None):
        return self._has(request, "view") or self._has(request, "add")

    def has_add_permission(self, request):
        return self._has(request, "add") and self._manages_any(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # kept for the record: revoked instead

    def has_invite_permission(self, request) -> bool:
        return self.has_add_permission(request)

    def get_list_display(self, request):
        shown = list(super().get_list_display(request))
        return [*shown, *self.SUPERUSER_FIELDS] if request.user.is_superuser else shown

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.ADD_FIELDS
        if request.user.is_superuser:
            return [*self.SHOWN_FIELDS, *self.SUPERUSER_FIELDS]
        return self.SHOWN_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return role_guarded_form(form, viewer=request.user)

    def save_model(self, request, obj, form, change):
        created = invitation_create(
            account=obj.account, email=obj.email, role=obj.role, invited_by=request.user
        )
        # The admin goes on with `obj` (its message, history entry and redirect).
        for field in Invitation._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        messages.info(
            request,
            f"The link is being emailed to {obj.email}; it works once, for "
            f"{settings.INVITATION_EXPIRY_DAYS} day(s). Whether the email left is shown in the "
            "list.",
        )

    @admin.display(description="state")
    def state_shown(self, obj) -> str:
        return Invitation.State(obj.state).label

    @admin.display(description="email")
    def email_shown(self, obj) -> str:
        if obj.email_sent_at:
            return f"sent {moment_text(obj.email_sent_at)}"
        return f"not sent ({obj.email_error})" if obj.email_error else "not sent yet"

    def _invitations_managed(self, request, queryset):
        """The selected invitations whose role the viewer may give in their account."""
        managed = self.managed(request, queryset).select_related("account")
        if request.user.is_superuser:
            return list(managed)
        roles = account_roles_for_user(user=request.user)
        allowed = [
            invitation
            for invitation in managed
            if role_manages(
                manager_role=roles.get(invitation.account_id), member_role=invitation.role
            )
        ]
        self.skipped_message(request, queryset.count() - len(allowed))
        return allowed

    @admin.action(description="Revoke selected invitations (their links stop working)",
                  permissions=["invite"])  # fmt: skip
    def revoke(self, request, queryset):
        revoked = [
            invitation_revoke(invitation=i) for i in self._invitations_managed(request, queryset)
        ]
        messages.success(request, f"Revoked {len(revoked)} invitation(s).")

    @admin.action(description="Send a new link (the old one stops working)",
                  permissions=["invite"])  # fmt: skip
    def send_new_link(self, request, queryset):
        invitations = self._invitations_managed(request, queryset)
        open_ = [
            i
            for i in invitations
            if i.state in (Invitation.State.PENDING, Invitation.State.EXPIRED)
        ]
        for invitation in open_:
            invitation_renew(invitation=invitation)
        messages.success(
            request,
            f"Sending {len(open_)} new link(s); accepted and revoked invitations were left as "
            "they are.",
        )


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class ConsoleUserAdmin(HidesOutsideUsersInHistory, UserAdmin):
    """Django's user admin, scoped like the rest of the console: staff see the members of their
    accounts (another tenant's user answers 404), superusers everyone. A member is changed or
    removed only by someone who manages every account they belong to (an admin never an
    owner); only superusers create users (a new user belongs to no account yet, so no one
    else could see it) or grant superuser status, groups and permissions."""

    show_full_result_count = False
    PRIVILEGE_FIELDS = ["is_superuser", "groups", "user_permissions"]
    list_display = [*UserAdmin.list_display, "two_factor_shown"]
    actions = ["reset_two_factor"]

    def get_queryset(self, request):
        # Ordered: the user autocomplete pages it (an unordered page may skip or repeat users).
        users = member_list_for_user(user=request.user).order_by("username")
        return users.annotate(two_factor_on=two_factor_on("pk"))

    @admin.display(description="two-factor login", boolean=True)
    def two_factor_shown(self, obj) -> bool:
        return getattr(obj, "two_factor_on", False)

    @admin.action(
        description="Reset two-factor login of selected users (a lost phone)",
        permissions=["change"],
    )
    def reset_two_factor(self, request, queryset):
        two_factor_reset_selected(request, list(queryset))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No user with this id in your accounts.")
        return obj

    # Recorded by Django (at sign-in, at creation), never typed: shown, not an input.
    RECORDED_FIELDS = ["last_login", "date_joined"]

    def get_readonly_fields(self, request, obj=None):
        readonly = [*super().get_readonly_fields(request, obj), *self.RECORDED_FIELDS]
        if request.user.is_superuser:
            return readonly
        return [*readonly, *self.PRIVILEGE_FIELDS]

    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or member_is_manageable_by(user=request.user, member=obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or member_is_manageable_by(user=request.user, member=obj))


class SuperusersOnly(admin.ModelAdmin):
    """django-axes's admins (Access attempts: the console's login lockouts) show every user's
    name and address: the install's, for superusers only, whatever Django permissions a
    tenant's member was given."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


for _model in (AccessAttempt, AccessLog, AccessFailureLog):
    if admin.site.is_registered(_model):
        _axes_admin = type(admin.site.get_model_admin(_model))
        admin.site.unregister(_model)
        admin.site.register(
            _model, type(f"Superusers{_axes_admin.__name__}", (SuperusersOnly, _axes_admin), {})
        )

# Authenticator apps and recovery codes are managed on each person's Two-factor login page and
# reset through the members' lists, never edited as rows: django-otp's admins would show every
# user's TOTP key.
for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
