"""The console's users: Django's user admin scoped to the viewer's accounts
(ConsoleUserAdmin); django-axes's admins narrowed to superusers and django-otp's removed."""

# Registers axes's admins, which are narrowed to superusers at the end of this module.
import axes.admin  # noqa: F401
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import Http404
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.admin.bases import HidesOutsideUsersInHistory
from accounts.admin.members import two_factor_on, two_factor_reset_selected
from accounts.selectors import member_is_manageable_by, member_list_for_user

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
