"""{% background_banner %}: the banner every console page shows staff when background work is
not happening (config/heartbeat.py), times in the viewer's zone as the console shows them."""

from django import template
from django.utils.html import format_html, format_html_join

from config.heartbeat import background_status
from config.times import stamp, time_html, viewer_zone

register = template.Library()


@register.simple_tag(takes_context=True)
def background_banner(context) -> str:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_active or not user.is_staff:
        return ""
    status = background_status()
    if status.ok:
        return ""
    zone = viewer_zone(request)
    lines = format_html_join(
        "",
        "<li>{}{}: {}.</li>",
        (
            (
                pause.paused,
                format_html(" since {}", time_html(stamp(pause.since, zone)))
                if pause.since
                else "",
                pause.reason,
            )
            for pause in status.pauses
        ),
    )
    return format_html(
        '<div class="background-banner" role="alert" style="background:#fff4e5;'
        "border:1px solid #f0b429;color:#5c3c00;padding:10px 16px;margin:0 0 16px;"
        'border-radius:4px"><strong>Background work is not happening.</strong>'
        '<ul style="margin:4px 0 0;padding-left:20px">{}</ul>'
        "<small>Start the Celery workers and beat (make run starts them; see docs/operating.md, "
        "Heartbeats).</small></div>",
        lines,
    )
