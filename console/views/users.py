"""A user's pages: their timeline (the search on one user, with their preferences and
contact) and the erasure of everything recorded about them."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from audit.models import AccessRecord
from audit.services import access_record
from config.times import stamp
from console import queries
from console.views.search import search_context
from console.views.viewer import addresses_masked, console_url, viewer_for
from logs.erasure import erasure_request
from logs.models import ErasureJob


def user_timeline_view(request, *, admin):
    user_id = request.GET.get("user", "").strip()
    if not user_id:
        messages.info(request, "Pick a notification or search a user id to see a user's timeline.")
        return redirect(console_url("changelist"))
    context = search_context(request, admin, user_id=user_id)
    context["title"] = f"User {user_id}"
    context["user_id"] = user_id
    environment = context.get("environment")
    if environment is not None:
        access_record(
            request=request,
            environment_id=environment.id,
            action=AccessRecord.Action.TIMELINE,
            user_id=user_id,
        )
        context["preferences"] = list(
            queries.user_preferences(environment_id=environment.id, user_id=user_id)
        )
        contact = queries.user_contact(environment_id=environment.id, user_id=user_id)
        if contact and context["viewer"].sees_addresses_masked(environment):
            addresses_masked(contact)
        context["contact"] = contact
        context["contact_seen"] = stamp(contact.created_at, context["zone"]) if contact else None
        if context["viewer"].may_erase(environment):
            context["erase_url"] = console_url(
                "erase", params={"environment": environment.id, "user": user_id}
            )
    return TemplateResponse(request, "console/user.html", context)


def erase_view(request, *, admin):
    """Owners and admins erase everything recorded about one user of an environment
    (logs/erasure.py): GET asks for confirmation and shows the user's latest erasure job and
    its state; POST queues the job (or finds the one already queued or running)."""
    viewer = viewer_for(request, admin)
    user_id = request.GET.get("user", "").strip()
    try:
        environment = viewer.environment(int(request.GET.get("environment", "")))
    except (ValueError, StopIteration):
        raise Http404("No such environment among yours.") from None
    if not user_id:
        raise Http404("No user id.")
    if not viewer.may_erase(environment):
        raise PermissionDenied("Only owners and admins erase a user's data.")
    here = console_url("erase", params={"environment": environment.id, "user": user_id})
    if request.method == "POST":
        job, created = erasure_request(
            environment=environment,
            user_id=user_id,
            requested_by=request.user.get_username(),
            requested_by_user=request.user,
        )
        if created:
            messages.success(request, f"Erasure of {user_id} queued (job {job.pk}).")
        else:
            messages.info(request, f"The erasure of {user_id} is already {job.state}.")
        return redirect(here)
    context = {
        **admin.admin_site.each_context(request),
        "title": f"Erase the data of user {user_id}?",
        "viewer": viewer,
        "zone": viewer.zone,
        "user_id": user_id,
        "environment": environment,
        "job": ErasureJob.objects.filter(environment=environment, user_id=user_id).first(),
        "erase_url": here,
        "user_url": console_url("user", params={"environment": environment.id, "user": user_id}),
    }
    return TemplateResponse(request, "console/erase_confirm.html", context)
