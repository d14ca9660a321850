"""The search page: the form, a page of notifications found and the links to the pages
around it. A user's timeline (console/views/users.py) and the export (console/views/export.py)
are this search on one user, or all of its rows."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.template.response import TemplateResponse

from config.times import stamp, time_html
from console import queries
from console.forms import SearchForm, environment_from
from console.interpret import KEY_LABELS
from console.presenting import badges_html, channel_badge, status_tone
from console.search import PagePosition, console_search, newer_params, older_params, page_position
from console.views.viewer import Viewer, addresses_masked, console_url, page_url, viewer_for
from logs.models import Notification

PAGE_SIZE = 50


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


def _rows(viewer: Viewer, environment_id: int, notifications: list) -> list[ListedNotification]:
    states = queries.channel_states_by_notification(
        environment_id=environment_id, notifications=notifications
    )
    if viewer.sees_addresses_masked(viewer.environment(environment_id)):
        for notification in notifications:
            addresses_masked(notification)
    user_base = console_url("user")
    return [
        ListedNotification(
            notification=n,
            created_html=time_html(stamp(n.created_at, viewer.zone)),
            badges_html=badges_html([channel_badge(state) for state in states.get(n.id, [])]),
            tone=status_tone(n.status),
            url=page_url("change", n.id, environment_id),
            user_url=f"{user_base}?{urlencode({'environment': environment_id, 'user': n.user_id})}",
        )
        for n in notifications
    ]


def search_context(request, admin, *, user_id: str = "") -> dict:
    """Everything the list and the user's timeline show: the form, the page, the links."""
    viewer = viewer_for(request, admin)
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
    params = kept_params(form, outcome)
    if user_id:
        params["user"] = user_id  # the user's timeline pages and exports stay on the user
    page = outcome.page
    context.update(
        environment=environment,
        outcome=outcome,
        rows=_rows(viewer, environment.id, page.notifications),
        searched_back_to=stamp(page.searched_back_to, viewer.zone),
        may_export=viewer.may_export(environment),
        export_url=console_url("export", params=params) if viewer.may_export(environment) else "",
        older_url=(
            "?" + urlencode({**params, **older_params(position, page.next_cursor)})
            if page.next_cursor
            else ""
        ),
        newer_url=_newer_url(params, position),
        text=text,
    )
    return context


def kept_params(form: SearchForm, outcome) -> dict:
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
    context = search_context(request, admin)
    context["title"] = "Find a notification"
    return TemplateResponse(request, "console/search.html", context)
