from django import forms
from django.contrib import admin
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_post_parameters

from accounts.admin.bases import TenantScopedAdmin
from accounts.models import Environment, Membership
from accounts.selectors import account_list_for_user, environment_list_for_user
from notifications.models import (
    ChannelProvider,
    ChannelTemplate,
    EndUser,
    NotificationType,
    SenderDomain,
    SubNotification,
    TwilioCredentials,
    UserPreference,
)
from notifications.providers import PROVIDERS_BY_CHANNEL
from notifications.services.upkeep import twilio_auth_token_set


class ChannelTemplateInline(admin.StackedInline):
    model = ChannelTemplate
    extra = 0


@admin.register(NotificationType)
class NotificationTypeAdmin(TenantScopedAdmin):
    list_display = ["key", "name", "environment", "created_at"]
    list_select_related = ["environment__account"]
    search_fields = ["=key", "name"]
    inlines = [ChannelTemplateInline]
    show_full_result_count = False
    environment_path = "environment"


@admin.register(UserPreference)
class UserPreferenceAdmin(TenantScopedAdmin):
    list_display = ["user_id", "notification_type", "channel", "delivery", "environment",
                    "updated_at"]  # fmt: skip
    list_select_related = ["environment__account"]
    list_filter = ["delivery", "channel"]
    search_fields = ["=user_id", "=notification_type"]
    # When the API last set it: shown, not typed.
    readonly_fields = ["updated_at"]
    show_full_result_count = False
    environment_path = "environment"


@admin.register(EndUser)
class EndUserAdmin(TenantScopedAdmin):
    """End users as identified through the API, with their preferences on the same page."""

    list_display = ["user_id", "email", "number", "timezone", "environment", "updated_at"]
    list_select_related = ["environment__account"]
    search_fields = ["=user_id", "=email", "=number"]
    # updated_at: when the API last identified the user: shown, not typed.
    readonly_fields = ["updated_at", "preferences"]
    show_full_result_count = False
    environment_path = "environment"

    @admin.display(description="preferences")
    def preferences(self, obj: EndUser) -> str:
        rows = UserPreference.objects.filter(
            environment_id=obj.environment_id, user_id=obj.user_id
        ).order_by("notification_type", "channel", "sub_notification_id")
        lines = [
            format_html(
                "<li>{}{}{}: <strong>{}</strong></li>",
                row.notification_type,
                f" / {row.get_channel_display()}" if row.channel else " (all channels)",
                f" / {row.sub_notification_id}" if row.sub_notification_id else "",
                row.get_delivery_display(),
            )
            for row in rows
        ]
        if not lines:
            return "No preferences: every notification is delivered instantly."
        return format_html("<ul>{}</ul>", format_html_join("", "{}", ((line,) for line in lines)))


@admin.register(SubNotification)
class SubNotificationAdmin(TenantScopedAdmin):
    list_display = ["sub_notification_id", "title", "notification_type", "environment"]
    list_select_related = ["environment__account"]
    search_fields = ["=notification_type", "=sub_notification_id"]
    show_full_result_count = False
    environment_path = "environment"


@admin.register(ChannelProvider)
class ChannelProviderAdmin(TenantScopedAdmin):
    """Per-environment provider overrides (e.g. the sandbox for a staging environment)."""

    list_display = ["environment", "channel", "provider"]
    list_select_related = ["environment__account"]
    show_full_result_count = False
    environment_path = "environment"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "provider":
            names = sorted({name for names in PROVIDERS_BY_CHANNEL.values() for name in names})
            kwargs["widget"] = forms.Select(choices=[(name, name) for name in names])
        return super().formfield_for_dbfield(db_field, request, **kwargs)


# Sender domains are the owners' alone: a domain lets every credential of the environment send
# as that company, so admins, support and viewers only see them.
OWNER_ROLES = (Membership.Role.OWNER,)


@admin.register(SenderDomain)
class SenderDomainAdmin(TenantScopedAdmin):
    """Verified sender domains: the From domains an environment's sends may use besides the
    install's DEFAULT_FROM_EMAIL. Members of the account see them; only its owners (and
    superusers) add, change or delete them."""

    list_display = ["domain", "environment", "created_at"]
    list_select_related = ["environment__account"]
    search_fields = ["=domain"]
    show_full_result_count = False
    environment_path = "environment"

    def get_readonly_fields(self, request, obj=None):
        readonly = ["created_at"]
        # Who vouched for it, for the operator (the person may have left the account since).
        return [*readonly, "added_by"] if request.user.is_superuser else readonly

    def _owner_accounts(self, request):
        return account_list_for_user(user=request.user, roles=OWNER_ROLES)

    def _manages(self, request, obj) -> bool:
        if request.user.is_superuser:
            return True
        return self._owner_accounts(request).filter(pk=obj.environment.account_id).exists()

    def managed(self, request, queryset):
        if request.user.is_superuser:
            return queryset
        return queryset.filter(environment__account__in=self._owner_accounts(request))

    def has_add_permission(self, request):
        allowed = super().has_add_permission(request)
        return allowed and (request.user.is_superuser or self._owner_accounts(request).exists())

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.related_model is Environment:
            field.queryset = environment_list_for_user(user=request.user, roles=OWNER_ROLES)
        return field

    def save_model(self, request, obj, form, change):
        if not change:
            obj.added_by = request.user
        super().save_model(request, obj, form, change)


class TwilioCredentialsForm(forms.ModelForm):
    """The auth token is write-only: the input is always empty (never rendered back, not even
    after an error), a new value replaces the stored one, the box clears it."""

    new_auth_token = forms.CharField(
        label="New auth token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Type the Twilio account's auth token to set or replace it; leave empty to "
        "keep the one set. It is stored encrypted and never shown again.",
    )
    clear_auth_token = forms.BooleanField(
        label="Clear the auth token",
        required=False,
        help_text="Also clear the account SID: the environment then uses the install's "
        "Twilio account (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).",
    )

    class Meta:
        model = TwilioCredentials
        fields = ["environment", "account_sid", "from_number"]

    def clean(self):
        cleaned = super().clean()
        token, clear = cleaned.get("new_auth_token"), cleaned.get("clear_auth_token")
        if token and clear:
            self.add_error(
                "clear_auth_token",
                "Either type a new auth token or clear the stored one, not both.",
            )
        elif token or clear:
            # Set on the instance before the model's validation (run after this), which checks
            # the token against the account SID; saved with the rest of the form.
            twilio_auth_token_set(credentials=self.instance, auth_token=token or "", save=False)
        return cleaned


@admin.register(TwilioCredentials)
class TwilioCredentialsAdmin(TenantScopedAdmin):
    """An environment's own Twilio account (SMS and calls are sent with it, its callbacks
    verified with its token). The token is never shown: the page says only whether one is set."""

    form = TwilioCredentialsForm
    list_display = ["environment", "account_sid", "auth_token_status", "from_number", "updated_at"]
    list_select_related = ["environment__account"]
    search_fields = ["=environment__client_id", "=account_sid"]
    show_full_result_count = False
    environment_path = "environment"

    def get_fields(self, request, obj=None):
        fields = ["environment", "account_sid", "auth_token_status", "from_number"]
        can_edit = (
            self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        )
        if can_edit:
            # Only those who may change it see the inputs; the token itself never appears.
            fields[3:3] = ["new_auth_token", "clear_auth_token"]
        return [*fields, "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        readonly = ["auth_token_status", "updated_at"]
        # One row per environment: moving it to another would be a new row, not an edit.
        return [*readonly, "environment"] if obj else readonly

    @admin.display(description="auth token")
    def auth_token_status(self, obj: TwilioCredentials | None) -> str:
        if obj is not None and obj.has_auth_token:
            return "Set (never shown)"
        return "Not set: the install's TWILIO_AUTH_TOKEN verifies this environment's callbacks"

    @method_decorator(sensitive_post_parameters("new_auth_token"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The typed token stays out of error reports (Django masks it in tracebacks).
        return super().changeform_view(request, object_id, form_url, extra_context)
