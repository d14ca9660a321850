"""The invitation page (outside the admin: the person opening it may have no user yet). It
validates input, calls one service of accounts/invitations.py and answers."""

from django.contrib import admin, messages
from django.contrib.auth import login
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters

from accounts.forms import InviteeUserForm
from accounts.invitations import (
    Accepted,
    InvitationRefused,
    email_has_user,
    invitation_accept,
    invitation_accept_as_new_user,
    invitation_for_token,
)

TEMPLATE = "accounts/invitation.html"
# The user made from an invitation signs in with its password through this backend, as at the
# admin's login form; login() needs it named when several backends are configured.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


@method_decorator(sensitive_post_parameters("password1", "password2"), name="dispatch")
class InvitationView(View):
    def _page(self, request, context: dict, status: int = 200) -> TemplateResponse:
        response = TemplateResponse(
            request,
            TEMPLATE,
            {
                **admin.site.each_context(request),
                "is_nav_sidebar_enabled": False,
                **context,
            },
            status=status,
        )
        # The page names the invited address: no cache keeps it.
        add_never_cache_headers(response)
        return response

    def _refused(self, request, refused: InvitationRefused) -> TemplateResponse:
        context = {"refused": str(refused), "title": "This invitation cannot be used"}
        return self._page(request, context, status=refused.status)

    def _context(self, request, invitation, form=None) -> dict:
        shown = {"invitation": invitation, "title": f"Join {invitation.account.name}"}
        user = request.user
        if user.is_authenticated:
            same = (user.email or "").strip().lower() == invitation.email.strip().lower()
            return {**shown, "mode": "accept" if same else "other_user"}
        if email_has_user(email=invitation.email):
            login_url = reverse("admin:login") + "?" + urlencode({"next": request.path})
            return {**shown, "mode": "log_in", "login_url": login_url}
        form = form or InviteeUserForm(email=invitation.email)
        return {**shown, "mode": "sign_up", "form": form}

    def get(self, request, token: str):
        try:
            invitation = invitation_for_token(token=token)
        except InvitationRefused as refused:
            return self._refused(request, refused)
        return self._page(request, self._context(request, invitation))

    def post(self, request, token: str):
        try:
            if request.user.is_authenticated:
                accepted = invitation_accept(token=token, user=request.user)
                return self._welcome(request, accepted)
            invitation = invitation_for_token(token=token)
            form = InviteeUserForm(request.POST, email=invitation.email)
            if not form.is_valid():
                return self._page(request, self._context(request, invitation, form))
            accepted = invitation_accept_as_new_user(token=token, user=form.save(commit=False))
        except InvitationRefused as refused:
            return self._refused(request, refused)
        login(request, accepted.membership.user, backend=MODEL_BACKEND)
        return self._welcome(request, accepted)

    def _welcome(self, request, accepted: Accepted) -> HttpResponseRedirect:
        membership = accepted.membership
        if accepted.created:
            messages.success(
                request,
                f"Welcome: you are now {membership.get_role_display()} of "
                f"{membership.account.name}.",
            )
        else:
            messages.info(
                request,
                f"You already belong to {membership.account.name} (as "
                f"{membership.get_role_display()}); your role there is unchanged.",
            )
        return HttpResponseRedirect(reverse("admin:index"))
