"""How every console page shows times: in the viewer's zone, with seconds and the zone's name
("2026-12-06 23:42:13 CET"), as the support pages do (config.times.stamp).

Three parts, so no admin has to remember it:

- ViewerZoneMiddleware activates the viewer's zone (the browser's, from the console's cookie)
  for console requests. Django's admin renders every datetime through the active zone:
  list columns and read-only fields (admin.utils.display_for_field → template_localtime),
  the history page, date inputs; so does `{{ moment }}` in a template and moment_text here.
- config/formats/en/formats.py makes DATETIME_FORMAT "Y-m-d H:i:s T" (Django's English one is
  "N j, Y, P": "Dec. 6, 2026, 10:42 p.m.").
- static/console/zone.js, on every admin page (templates/admin/base_site.html), stores the
  browser's zone in the cookie; the support pages' console.js did so only on their pages.

Outside the console (the API, emails, Celery) no zone is activated: times there stay UTC.
"""

from datetime import datetime

from django.urls import reverse
from django.utils import dateformat, timezone

from config.times import viewer_zone

# The same as config.times.stamp's local time, in Django's date format syntax.
MOMENT_FORMAT = "Y-m-d H:i:s T"


def moment_text(moment: datetime | None, empty: str = "—") -> str:
    """A time as every console page shows it: in the active zone (the viewer's on a console
    page, UTC elsewhere), with seconds and the zone's name."""
    if moment is None:
        return empty
    return dateformat.format(timezone.localtime(moment), MOMENT_FORMAT)


class ViewerZoneMiddleware:
    """Activates the viewer's zone for the console's pages (under the admin's URL)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._prefix = None

    def __call__(self, request):
        if self._prefix is None:
            self._prefix = reverse("admin:index")
        if not request.path.startswith(self._prefix):
            return self.get_response(request)
        timezone.activate(viewer_zone(request))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
