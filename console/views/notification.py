"""The notification page: its channel cards and timeline (masked unless revealed), the live
poll of new timeline lines (events_view), reveal and resend."""

import hashlib
import uuid
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse

from audit.models import AccessRecord
from audit.services import access_record
from config.times import stamp
from console import queries, services
from console.presenting import (
    CHANNEL_ICONS,
    KIND_TONES,
    channel_badge,
    email_srcdoc,
    pretty_json,
    status_tone,
)
from console.resend_plan import resend_plan
from console.views.viewer import Viewer, addresses_masked, console_url, page_url, viewer_for
from logs.content_retention import content_cleared_notice
from logs.masking import Masker, addresses_hidden, addresses_of, masker_build
from logs.models import Notification
from logs.payloads import event_payload
from logs.selectors import notification_deliveries, notification_deliveries_sent
from logs.vocabulary import Channel, EventKind, NotificationStatus
from notifications.services.sends import NotFound
from notifications.wire import RequestInvalid


def _notification(viewer: Viewer, object_id, request) -> Notification:
    """The notification of a page's URL, among the viewer's environments; looked up first in
    the environment the URL names (`?environment=`, on the console's own links)."""
    try:
        environment_id = int(request.GET["environment"])
    except (KeyError, ValueError):
        environment_id = None
    try:
        tracking_id = uuid.UUID(str(object_id))
        return queries.notification_for_viewer(
            environment_ids=[e.id for e in viewer.environments],
            tracking_id=tracking_id,
            environment_id=environment_id,
        )
    except (ValueError, Notification.DoesNotExist):
        raise Http404("No notification with this tracking id in your accounts.") from None


def _masker(viewer: Viewer, notification: Notification, *, revealed: bool) -> Masker:
    if revealed:
        masker = Masker()
    else:
        words = queries.sensitive_words_for(environment_id=notification.environment_id)
        masker = masker_build(sources=[notification.merge_tags, notification.request], words=words)
    if viewer.sees_addresses_masked(viewer.environment(notification.environment_id)):
        known = addresses_of(
            email=notification.email, number=notification.number, request=notification.request
        )
        masker = addresses_hidden(masker, known=known)
    return masker


@dataclass
class TimelineLine:
    id: int | None  # None: an event folded into the delivery (logs.timeline), no row
    key: str  # the line's identity on the page (the live poll skips lines it has)
    label: str
    tone: str
    occurred: object
    recorded: object
    channel: str
    icon: str
    source: str
    provider: str
    detail: str
    error_code: str
    payload: str


def _timeline(viewer, events, deliveries_by_channel, masker) -> list[TimelineLine]:
    lines = []
    for event in events:
        delivery = deliveries_by_channel.get(event.channel)
        failed_here = event.kind == "failed" and delivery is not None
        payload = event_payload(event)
        lines.append(
            TimelineLine(
                id=event.id,
                key=hashlib.sha256(event.dedupe_key.encode()).hexdigest()[:16],
                label=event.label,
                tone=KIND_TONES.get(event.kind, "wait"),
                occurred=stamp(event.occurred_at, viewer.zone),
                recorded=stamp(event.recorded_at, viewer.zone),
                channel=Channel(event.channel).label if event.channel else "",
                icon=CHANNEL_ICONS.get(event.channel, ""),
                source=event.source,
                provider=delivery.provider if delivery else "",
                detail=masker.text(event.detail),
                error_code=delivery.error_code if failed_here else "",
                payload=pretty_json(masker.data(payload)) if payload else "",
            )
        )
    return lines


@dataclass
class ChannelCard:
    badge: object
    delivery: object
    subject: str
    text: str
    html: str
    srcdoc_blocked: str
    srcdoc_images: str
    sender: str
    link: str  # in-app: where the item leads, and its image
    image: str
    error_message: str
    sent: object
    delivered: object
    failed: object


def _sender(notification: Notification, events: list) -> str:
    """The email's sender as it was handed to the provider: the pipeline keeps it on the
    Sending line's payload (notifications.sending._envelope), the newest attempt's last, or
    on the delivery (`sender`, with the first attempt's Sending folded into it: those lines
    come from logs.timeline with it as their payload). Rows without one (written before
    that, or seeded) show what the request asked for: NotificationAPI's
    options.email.fromAddress / fromName."""
    sending = [e for e in events if e.kind == EventKind.SENDING and e.channel == Channel.EMAIL]
    for event in reversed(sending):
        payload = event_payload(event)
        if isinstance(payload, dict) and payload.get("from"):
            return str(payload["from"])
    options = (notification.request or {}).get("options") or {}
    email = options.get("email") or {} if isinstance(options, dict) else {}
    if not isinstance(email, dict):
        return ""
    address, name = email.get("fromAddress", ""), email.get("fromName", "")
    return f"{name} <{address}>" if name and address else str(address or name)


def _cards(viewer, notification, deliveries, events, masker) -> list[ChannelCard]:
    sender = masker.text(_sender(notification, events))
    in_app = None
    if any(delivery.channel == Channel.IN_APP for delivery in deliveries):
        in_app = queries.in_app_item(notification=notification)
    cards = []
    for delivery in deliveries:
        content = delivery.sent_content
        body = masker.text(content.html)
        subject, text = content.subject, content.text
        item = in_app if delivery.channel == Channel.IN_APP else None
        if delivery.channel == Channel.IN_APP and not subject:
            # The in-app provider stores the item's title as the delivery's text.
            subject, text = text, ""
        cards.append(
            ChannelCard(
                badge=channel_badge(delivery),
                delivery=delivery,
                subject=masker.text(subject),
                text=masker.text(text),
                html=body,
                srcdoc_blocked=email_srcdoc(body, images=False) if body else "",
                srcdoc_images=email_srcdoc(body, images=True) if body else "",
                sender=sender if delivery.channel == Channel.EMAIL else "",
                link=masker.text(item.url) if item else "",
                image=masker.text(item.image) if item else "",
                error_message=masker.text(delivery.error_message),
                sent=stamp(delivery.sent_at, viewer.zone),
                delivered=stamp(delivery.delivered_at, viewer.zone),
                failed=stamp(delivery.failed_at, viewer.zone),
            )
        )
    return cards


def _notification_context(request, admin, viewer, notification, *, revealed: bool) -> dict:
    masker = _masker(viewer, notification, revealed=revealed)
    deliveries = notification_deliveries_sent(notification=notification)
    if masker.addresses:
        addresses_masked(notification)
        for delivery in deliveries:
            delivery.destination = masker.text(delivery.destination)
    by_channel = {d.channel: d for d in deliveries}
    events = queries.events_after(notification=notification, deliveries=deliveries)
    environment = notification.environment
    return {
        **admin.admin_site.each_context(request),
        "title": f"{notification.notification_type} to {notification.user_id}",
        "viewer": viewer,
        "zone": viewer.zone,
        "n": notification,
        "environment": environment,
        "status_tone": status_tone(notification.status),
        "created": stamp(notification.created_at, viewer.zone),
        "updated": stamp(notification.updated_at, viewer.zone),
        "scheduled": stamp(notification.scheduled_for, viewer.zone),
        "cards": _cards(viewer, notification, deliveries, events, masker),
        "timeline": _timeline(viewer, events, by_channel, masker),
        "last_event_id": max((e.id for e in events if e.id is not None), default=0),
        "request_json": pretty_json(masker.data(notification.request)),
        "content_cleared": (
            content_cleared_notice(notification.content_cleared_after)
            if notification.content_cleared_after is not None
            else ""
        ),
        "merge_tags_json": pretty_json(masker.data(notification.merge_tags)),
        "masked": bool(masker.secrets) or masker.active,
        "addresses_masked": masker.addresses,
        "has_secrets": bool(masker.secrets),
        "revealed": revealed,
        "may_reveal": viewer.may_reveal(environment),
        "may_resend": viewer.may_resend(environment),
        "resend_url": page_url("resend", notification.id, environment.id),
        **_resend_links(viewer, notification),
        "polling": notification.status == NotificationStatus.RECEIVED,
        "events_url": page_url("events", notification.id, environment.id),
        "reveal_url": page_url("reveal", notification.id, environment.id),
        "user_url": console_url(
            "user", params={"environment": environment.id, "user": notification.user_id}
        ),
    }


def _resend_links(viewer: Viewer, notification: Notification) -> dict:
    """This notification's place among resends: what it resends, and its resends."""
    links = queries.resend_links(notification=notification)

    def line(link, tracking_id):
        return {
            # A resend is sent in its original's environment.
            "url": page_url("change", tracking_id, notification.environment_id),
            "tracking_id": tracking_id,
            "by": link.username,
            "at": stamp(link.created_at, viewer.zone),
        }

    return {
        "resend_of": [line(k, k.original_id) for k in links if k.resend_id == notification.id],
        "resent_as": [line(k, k.resend_id) for k in links if k.original_id == notification.id],
    }


def _acted_on(request, admin, object_id, allowed, refusal: str):
    """The viewer and the notification a POSTed action applies to, once the viewer's role in
    its account allows the action (`allowed(viewer, environment)`); 404 outside their
    accounts, 403 for a role without it."""
    viewer = viewer_for(request, admin)
    notification = _notification(viewer, object_id, request)
    if not allowed(viewer, notification.environment):
        raise PermissionDenied(refusal)
    return viewer, notification


def resend_view(request, object_id, *, admin):
    """Support and above send a notification's original request again: GET asks for
    confirmation and says which channels it will use (and which will be ignored), POST
    sends."""
    viewer, notification = _acted_on(
        request, admin, object_id, Viewer.may_resend,
        "Viewers do not resend: ask an owner, admin or support member.",
    )  # fmt: skip
    if request.method != "POST":
        context = {
            **admin.admin_site.each_context(request),
            "title": f"Resend {notification.notification_type} to {notification.user_id}?",
            "viewer": viewer,
            "zone": viewer.zone,
            "n": notification,
            "created": stamp(notification.created_at, viewer.zone),
            "plan": resend_plan(notification=notification),
            "resend_url": page_url("resend", notification.id, notification.environment_id),
            "page_url": page_url("change", notification.id, notification.environment_id),
            "user_url": console_url(
                "user",
                params={"environment": notification.environment_id, "user": notification.user_id},
            ),
        }
        return TemplateResponse(request, "console/resend_confirm.html", context)
    access_record(
        request=request,
        environment_id=notification.environment_id,
        action=AccessRecord.Action.RESEND,
        tracking_id=notification.id,
        user_id=notification.user_id,
    )
    try:
        resend_id = services.notification_resend(notification=notification, user=request.user)
    except (RequestInvalid, NotFound) as exc:
        messages.error(request, f"This notification cannot be resent: {exc}")
        return redirect(page_url("change", notification.id, notification.environment_id))
    messages.success(request, f"Resent as a new notification ({resend_id}).")
    return redirect(page_url("change", resend_id, notification.environment_id))


def notification_view(request, object_id, *, admin):
    viewer = viewer_for(request, admin)
    notification = _notification(viewer, object_id, request)
    access_record(
        request=request,
        environment_id=notification.environment_id,
        action=AccessRecord.Action.NOTIFICATION,
        tracking_id=notification.id,
        user_id=notification.user_id,
    )
    context = _notification_context(request, admin, viewer, notification, revealed=False)
    return TemplateResponse(request, "console/notification.html", context)


def reveal_view(request, object_id, *, admin):
    """Owners and admins see the masked values, once, on this response; the reveal is
    recorded first, so no one reads a secret without a trace."""
    if request.method != "POST":
        kept = {"environment": request.GET["environment"]} if "environment" in request.GET else {}
        return redirect(console_url("change", object_id, params=kept))
    viewer, notification = _acted_on(
        request, admin, object_id, Viewer.may_reveal,
        "Only the account's owners and admins may reveal masked values.",
    )  # fmt: skip
    services.reveal_record(notification=notification, user=request.user)
    access_record(
        request=request,
        environment_id=notification.environment_id,
        action=AccessRecord.Action.REVEAL,
        tracking_id=notification.id,
        user_id=notification.user_id,
    )
    context = _notification_context(request, admin, viewer, notification, revealed=True)
    response = TemplateResponse(request, "console/notification.html", context)
    response["Cache-Control"] = "no-store"
    return response


def events_view(request, object_id, *, admin):
    """New timeline lines since `after` (an event id), rendered as the page renders them;
    the page's script polls this while the status is received. The lines folded into the
    deliveries (no id) come back each time: the page skips the ones it has (data-event-id
    is the line's key)."""
    viewer = viewer_for(request, admin)
    notification = _notification(viewer, object_id, request)
    try:
        after_id = max(int(request.GET.get("after", "0")), 0)
    except ValueError:
        return JsonResponse({"error": "after must be an event id (an integer)."}, status=400)
    masker = _masker(viewer, notification, revealed=False)
    deliveries = list(notification_deliveries(notification=notification))
    events = queries.events_after(
        notification=notification, deliveries=deliveries, after_id=after_id
    )
    lines = _timeline(viewer, events, {d.channel: d for d in deliveries}, masker)
    return JsonResponse(
        {
            "status": notification.status,
            "status_label": NotificationStatus(notification.status).label,
            "status_tone": status_tone(notification.status),
            "final": notification.status != NotificationStatus.RECEIVED,
            "last_event_id": max([after_id, *(line.id for line in lines if line.id is not None)]),
            "lines": [
                render_to_string("console/_timeline_line.html", {"line": line}) for line in lines
            ],
        }
    )
