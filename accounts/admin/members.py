"""The admins of who belongs to an account: memberships (their roles, a two-factor reset)
and invitations; a role is given only by someone whose own role manages it
(role_guarded_form)."""

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.admin.bases import TenantScopedAdmin
from accounts.invitations import invitation_create, invitation_renew, invitation_revoke
from accounts.models import Account, Invitation, Membership
from accounts.selectors import (
    MANAGER_ROLES,
    account_list_for_user,
    account_roles_for_user,
    role_manages,
)
from accounts.two_factor import (
    RESET_REFUSED,
    TwoFactorRefused,
    two_factor_reset,
    two_factor_resettable_by,
)
from config.admin_display import moment_text


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
