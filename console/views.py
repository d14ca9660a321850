"""The console's pages, served inside Django's admin (console/admin.py wires the URLs through
admin_site.admin_view, so every page needs a logged-in staff user). Each view checks the
input, calls the selectors and answers; the rules live in the modules beside it.

Who sees what: every page reads only the viewer's environments (accounts.selectors), so
another tenant's notification answers 404. Support and viewers read with secrets masked;
owners and admins may reveal them (each reveal recorded); viewers do not export. An account may
show its viewers every email address and phone number masked (Account.viewer_addresses).

Every read of a person's data is in the access audit (audit/): the notification page, the
user's timeline, a reveal, a resend and an export each write one AccessRecord first.
"""

import csv
import hashlib
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.models import Environment, Membership
from accounts.selectors import MANAGER_ROLES, account_roles_for_user, environment_list_for_user
from audit.models import AccessRecord
from audit.services import access_record, export_counted
from config.export_slots import ExportsBusy, export_slot_stream, export_slot_take
from console import queries, services
from console.forms import SearchForm, environment_from
from console.interpret import KEY_LABELS
from console.masking import (
    Masker,
    addresses_hidden,
    addresses_of,
    email_masked,
    masker_build,
    number_masked,
)
from console.presenting import (
    CHANNEL_ICONS,
    KIND_TONES,
    badges_html,
    channel_badge,
    email_srcdoc,
    pretty_json,
    stamp,
    status_tone,
    time_html,
    viewer_zone,
)
from console.resend_plan import resend_plan
from console.search import (
    PagePosition,
    console_search,
    newer_params,
    older_params,
    page_position,
)
from logs.content_retention import content_cleared_notice
from logs.csv_cells import csv_row
from logs.erasure import erasure_request
from logs.models import ErasureJob, Notification
from logs.payloads import event_payload
from logs.search_conditions import notification_queryset
from logs.search_filters import NotificationFilters
from logs.selectors import notification_deliveries, notification_deliveries_sent
from logs.vocabulary import Channel, EventKind, NotificationStatus
from notifications.services import NotFound
from notifications.wire import RequestInvalid

PAGE_SIZE = 50
# An export streams at most this many rows; narrow the filters for more.
EXPORT_MAX = 100_000
# Rows read per keyset chunk (one short query each; channel states read per chunk too).
EXPORT_CHUNK = 1000
# Support and above export and resend; viewers only read.
EXPORT_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.SUPPORT)
RESEND_ROLES = EXPORT_ROLES


@dataclass
class Viewer:
    """The console user, their environments and their role in each account."""

    user: object
    environments: list[Environment]
    roles: dict[int, str]
    zone: ZoneInfo

    def role(self, environment: Environment) -> str | None:
        if self.user.is_superuser:
            return Membership.Role.OWNER
        return self.roles.get(environment.account_id)

    def environment(self, environment_id: int) -> Environment:
        return next(e for e in self.environments if e.id == environment_id)

    def may_export(self, environment: Environment) -> bool:
        return self.role(environment) in EXPORT_ROLES

    def may_resend(self, environment: Environment) -> bool:
        return self.role(environment) in RESEND_ROLES

    def may_reveal(self, environment: Environment) -> bool:
        return self.role(environment) in MANAGER_ROLES

    def may_erase(self, environment: Environment) -> bool:
        return self.role(environment) in MANAGER_ROLES

    def sees_addresses_masked(self, environment: Environment) -> bool:
        """A viewer of an account that masks addresses for its viewers."""
        return (
            self.role(environment) == Membership.Role.VIEWER
            and environment.account.viewer_addresses == "masked"
        )


def _viewer(request, admin) -> Viewer:
    if not admin.has_view_permission(request):
        raise PermissionDenied
    return Viewer(
        user=request.user,
        # Only what the console shows: never the environment's encrypted secret.
        environments=list(
            environment_list_for_user(user=request.user).only(
                "id", "name", "account_id", "account__name", "account__viewer_addresses"
            )
        ),
        roles=account_roles_for_user(user=request.user),
        zone=viewer_zone(request),
    )


def _url(name: str, *args, params: dict | None = None) -> str:
    url = reverse(f"admin:logs_notification_{name}", args=args)
    return f"{url}?{urlencode(params)}" if params else url


def _page_url(name: str, tracking_id, environment_id: int) -> str:
    """A URL of a notification's pages (change, events, reveal, resend) naming its
    environment, so the page reads it from that environment alone (queries.
    notification_for_viewer: one shard on Citus)."""
    return _url(name, tracking_id, params={"environment": environment_id})


# ---------------------------------------------------------------- search and user timeline


@dataclass
class ListedNotification:
    notification: Notification
    # Rendered here, not by a template include per row: a page of 50 rows renders in a
    # fraction of the time (bench/console.py measures it).
    created_html: str
    badges_html: str
    tone: str
    url: str
    user_url: str


def _addresses_masked(notification: Notification) -> None:
    """Mask the notification's own addresses in memory (it is never saved again), so every
    template that shows them shows them masked."""
    notification.email = email_masked(notification.email) if notification.email else ""
    notification.number = number_masked(notification.number) if notification.number else ""


def _rows(viewer: Viewer, environment_id: int, notifications: list) -> list[ListedNotification]:
    states = queries.channel_states_by_notification(
        environment_id=environment_id, notifications=notifications
    )
    if viewer.sees_addresses_masked(viewer.environment(environment_id)):
        for notification in notifications:
            _addresses_masked(notification)
    user_base = _url("user")
    return [
        ListedNotification(
            notification=n,
            created_html=time_html(stamp(n.created_at, viewer.zone)),
            badges_html=badges_html([channel_badge(state) for state in states.get(n.id, [])]),
            tone=status_tone(n.status),
            url=_page_url("change", n.id, environment_id),
            user_url=f"{user_base}?{urlencode({'environment': environment_id, 'user': n.user_id})}",
        )
        for n in notifications
    ]


def _search_context(request, admin, *, user_id: str = "") -> dict:
    """Everything the list and the user's timeline show: the form, the page, the links."""
    viewer = _viewer(request, admin)
    context = {**admin.admin_site.each_context(request), "viewer": viewer, "zone": viewer.zone}
    if not viewer.environments:
        messages.warning(request, "You are not a member of any account yet: ask its owner.")
        return context
    data = request.GET.copy()
    environment_id = environment_from(data, viewer.environments)
    data.setdefault("environment", str(environment_id))
    form = SearchForm(
        data,
        environments=viewer.environments,
        type_choices=queries.notification_type_choices(environment_id=environment_id),
    )
    position = page_position(data.get("after", ""), data.get("back", ""))
    if position.tampered:
        messages.info(request, "That page link was not valid: showing the first page.")
    context.update(form=form, position=position, key_labels=KEY_LABELS)
    if not form.is_valid():
        return context
    environment = viewer.environment(form.cleaned_data["environment"])
    filters = form.filter_kwargs(viewer.zone)
    text = "" if user_id else form.cleaned_data["q"]
    if user_id:
        filters["user_ids"] = [user_id]
    try:
        outcome = console_search(
            environment_id=environment.id,
            text=text,
            search_as=form.cleaned_data["search_as"],
            filters=filters,
            after=position.after,
            limit=PAGE_SIZE,
        )
    except ValueError as exc:
        form.add_error(None, str(exc))
        return context
    params = _kept_params(form, outcome)
    if user_id:
        params["user"] = user_id  # the user's timeline pages and exports stay on the user
    page = outcome.page
    context.update(
        environment=environment,
        outcome=outcome,
        rows=_rows(viewer, environment.id, page.notifications),
        searched_back_to=stamp(page.searched_back_to, viewer.zone),
        may_export=viewer.may_export(environment),
        export_url=_url("export", params=params) if viewer.may_export(environment) else "",
        older_url=(
            "?" + urlencode({**params, **older_params(position, page.next_cursor)})
            if page.next_cursor
            else ""
        ),
        newer_url=_newer_url(params, position),
        text=text,
    )
    return context


def _kept_params(form: SearchForm, outcome) -> dict:
    """The query string that repeats this search (with the key that answered it)."""
    data = form.cleaned_data
    params = {
        name: request_value
        for name in ("q", "environment", "status", "type", "channel", "event")
        if (request_value := data.get(name))
    }
    for name in ("date_from", "date_to"):
        if data.get(name):
            params[name] = data[name].isoformat()
    if outcome.searched_as is not None:
        params["search_as"] = outcome.searched_as.name
    return params


def _newer_url(params: dict, position: PagePosition) -> str:
    newer = newer_params(position)
    if newer is None:
        return ""
    return "?" + urlencode({**params, **{k: v for k, v in newer.items() if v}})


def search_view(request, *, admin):
    context = _search_context(request, admin)
    context["title"] = "Find a notification"
    return TemplateResponse(request, "console/search.html", context)


def user_timeline_view(request, *, admin):
    user_id = request.GET.get("user", "").strip()
    if not user_id:
        messages.info(request, "Pick a notification or search a user id to see a user's timeline.")
        return redirect(_url("changelist"))
    context = _search_context(request, admin, user_id=user_id)
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
            _addresses_masked(contact)
        context["contact"] = contact
        context["contact_seen"] = stamp(contact.created_at, context["zone"]) if contact else None
        if context["viewer"].may_erase(environment):
            context["erase_url"] = _url(
                "erase", params={"environment": environment.id, "user": user_id}
            )
    return TemplateResponse(request, "console/user.html", context)


def erase_view(request, *, admin):
    """Owners and admins erase everything recorded about one user of an environment
    (logs/erasure.py): GET asks for confirmation and shows the user's latest erasure job and
    its state; POST queues the job (or finds the one already queued or running)."""
    viewer = _viewer(request, admin)
    user_id = request.GET.get("user", "").strip()
    try:
        environment = viewer.environment(int(request.GET.get("environment", "")))
    except (ValueError, StopIteration):
        raise Http404("No such environment among yours.") from None
    if not user_id:
        raise Http404("No user id.")
    if not viewer.may_erase(environment):
        raise PermissionDenied("Only owners and admins erase a user's data.")
    here = _url("erase", params={"environment": environment.id, "user": user_id})
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
        "user_url": _url("user", params={"environment": environment.id, "user": user_id}),
    }
    return TemplateResponse(request, "console/erase_confirm.html", context)


# ---------------------------------------------------------------- the notification page


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
    Sending line's payload (notifications.dispatch._envelope), the newest attempt's last, or
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
        _addresses_masked(notification)
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
        "resend_url": _page_url("resend", notification.id, environment.id),
        **_resend_links(viewer, notification),
        "polling": notification.status == NotificationStatus.RECEIVED,
        "events_url": _page_url("events", notification.id, environment.id),
        "reveal_url": _page_url("reveal", notification.id, environment.id),
        "user_url": _url(
            "user", params={"environment": environment.id, "user": notification.user_id}
        ),
    }


def _resend_links(viewer: Viewer, notification: Notification) -> dict:
    """This notification's place among resends: what it resends, and its resends."""
    links = queries.resend_links(notification=notification)

    def line(link, tracking_id):
        return {
            # A resend is sent in its original's environment.
            "url": _page_url("change", tracking_id, notification.environment_id),
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
    viewer = _viewer(request, admin)
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
            "resend_url": _page_url("resend", notification.id, notification.environment_id),
            "page_url": _page_url("change", notification.id, notification.environment_id),
            "user_url": _url(
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
        return redirect(_page_url("change", notification.id, notification.environment_id))
    messages.success(request, f"Resent as a new notification ({resend_id}).")
    return redirect(_page_url("change", resend_id, notification.environment_id))


def notification_view(request, object_id, *, admin):
    viewer = _viewer(request, admin)
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
        return redirect(_url("change", object_id, params=kept))
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
    viewer = _viewer(request, admin)
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


# ---------------------------------------------------------------- export


_EXPORT_COLUMNS = [
    "tracking_id", "created_at_utc", "type", "status", "user_id", "email", "number", "channels",
]  # fmt: skip


class _Echo:
    def write(self, value):
        return value


def _export_rows(environment_id: int, filters: NotificationFilters):
    writer = csv.writer(_Echo())
    yield writer.writerow(_EXPORT_COLUMNS)
    rows = notification_queryset(environment_id=environment_id, filters=filters)
    left, after = EXPORT_MAX, None
    while left > 0:
        # Keyset chunks, each one short query: no transaction or server-side cursor stays
        # open while the browser downloads at its own pace.
        chunk_rows = rows
        if after is not None:
            chunk_rows = rows.filter(TupleLessThan(Tuple(F("created_at"), F("id")), after))
        chunk = list(chunk_rows[: min(EXPORT_CHUNK, left)])
        yield from _export_chunk(writer, environment_id, chunk)
        if len(chunk) < EXPORT_CHUNK:
            return
        left -= len(chunk)
        after = (chunk[-1].created_at, chunk[-1].id)


def _export_chunk(writer, environment_id: int, chunk: list[Notification]):
    states = queries.channel_states_by_notification(
        environment_id=environment_id, notifications=chunk
    )
    for n in chunk:
        channels = ";".join(f"{s.channel}:{s.state}" for s in states.get(n.id, []))
        values = [str(n.id), n.created_at.isoformat(), n.notification_type, n.status,
                  n.user_id, n.email, n.number, channels]  # fmt: skip
        yield writer.writerow(csv_row(values))


def export_view(request, *, admin):
    """The current filtered list (or user's timeline) as CSV, streamed (capped at EXPORT_MAX
    rows)."""
    user_id = request.GET.get("user", "").strip()
    context = _search_context(request, admin, user_id=user_id)
    environment = context.get("environment")
    if environment is None:
        messages.error(request, "Fix the search before exporting it.")
        return redirect(_url("changelist"))
    if not context["may_export"]:
        raise PermissionDenied("Viewers do not export: ask an owner, admin or support member.")
    form, outcome = context["form"], context["outcome"]
    filters = form.filter_kwargs(context["zone"])
    if user_id:
        filters["user_ids"] = [user_id]
    if outcome.searched_as is not None:
        filters.update(outcome.searched_as.filters)
    holder = f"console:user:{request.user.pk}"
    try:
        slot = export_slot_take(holder=holder, who="You")
    except ExportsBusy as busy:
        response = HttpResponse(busy.message, status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(busy.retry_after)
        return response
    record = access_record(
        request=request,
        environment_id=environment.id,
        action=AccessRecord.Action.EXPORT,
        user_id=user_id,
        filters={**_kept_params(form, outcome), **({"user": user_id} if user_id else {})},
    )
    rows = _export_rows(environment.id, NotificationFilters(**filters).normalized())
    response = StreamingHttpResponse(
        export_slot_stream(export_counted(record=record, lines=rows), holder=holder, slot=slot),
        content_type="text/csv; charset=utf-8",
    )
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{environment.account.name}-{environment.name}")
    response["Content-Disposition"] = f'attachment; filename="notifications-{name}.csv"'
    response["Cache-Control"] = "no-store"
    return response
