"""The admin bases every app's admins build on: scoped to the viewer's tenants
(TenantScopedAdmin), naming no user outside them in an object's history
(HidesOutsideUsersInHistory), and showing a new secret once on a page of its own
(ShowsSecretOnce)."""

import secrets
from functools import reduce

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers

from accounts.models import Account, Environment
from accounts.selectors import (
    MANAGER_ROLES,
    account_list_for_user,
    environment_list_for_user,
    member_list_for_user,
)


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
