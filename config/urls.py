from django.contrib import admin
from django.urls import include, path

from accounts import api as accounts_api
from config import health

# Django's own 400s (too many parameters, a body too big) answer JSON outside the console.
handler400 = "config.api.bad_request"

admin.site.site_header = "Notification log"
admin.site.site_title = "Notification log"
admin.site.index_title = "Console"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/environment", accounts_api.EnvironmentView.as_view(), name="api-environment"),
    path("admin/", admin.site.urls),
    # The logs API (/api/v1/logs…, /api/schema/, /api/docs/) and NotificationAPI's
    # /{clientId}/logs/query; last, since its client-id route matches any first segment.
    path("", include("logs.api.urls")),
]
