from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from accounts import api as accounts_api
from accounts import console_views
from accounts.views import InvitationView
from config import health, mailbox
from notifications.urls import api_v1_urlpatterns as notifications_api_v1

# Django's own 400s (too many parameters, a body too big) answer JSON outside the console.
handler400 = "config.api.bad_request"
# A missing or forbidden page is the product's page (the API's JSON for API clients), in the
# demo's DEBUG too: config/errors.py.
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"

admin.site.site_header = "Notification log"
admin.site.site_title = "Notification log"
admin.site.index_title = "Console"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/environment", accounts_api.EnvironmentView.as_view(), name="api-environment"),
    *notifications_api_v1,
    # The development mailbox (config/mailbox.py), inside the console's login.
    path("admin/mailbox/", admin.site.admin_view(mailbox.mailbox_view), name="mailbox"),
    path(
        "admin/mailbox/<str:key>/",
        admin.site.admin_view(mailbox.mailbox_view),
        name="mailbox-message",
    ),
    # The link in an invitation email (accounts/invitations.py); before admin/, outside it: the
    # person opening it may have no user yet.
    path("invitations/<str:token>/", InvitationView.as_view(), name="invitation-accept"),
    # The person's own security pages (accounts/console_views.py), inside the console's login.
    path(
        "admin/two-factor/",
        admin.site.admin_view(console_views.two_factor_view),
        name="two-factor",
    ),
    path(
        "admin/two-factor/verify/",
        admin.site.admin_view(console_views.two_factor_verify_view),
        name="two-factor-verify",
    ),
    path(
        "admin/two-factor/recovery-codes/",
        admin.site.admin_view(console_views.recovery_codes_view),
        name="two-factor-recovery-codes",
    ),
    path("admin/sessions/", admin.site.admin_view(console_views.sessions_view), name="sessions"),
    # The console's settings and its audit of reveals were under admin/logs/ until they moved
    # to the console app (console 0001): links to the old addresses still arrive.
    re_path(
        r"^admin/logs/(?P<page>(?:consolesettings|revealrecord)/.*)$",
        RedirectView.as_view(url="/admin/console/%(page)s", query_string=True),
    ),
    path("admin/", admin.site.urls),
    path("webhooks/", include("webhooks.urls")),
    path("", include("insights.urls")),  # GET /metrics (Prometheus)
    # The logs API (/api/v1/logs…, /api/schema/, /api/docs/) and NotificationAPI's
    # /{clientId}/logs/query, then the other NotificationAPI-compatible routes
    # (/{clientId}/...): last, they start with a variable.
    path("", include("logs.api.urls")),
    path("", include("notifications.urls")),
]
