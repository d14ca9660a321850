"""Routes of the logs API, included by config/urls.py."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from logs.api import docs, erasure, schema, views

# Registers the schema extensions before any schema is generated.
assert schema

urlpatterns = [
    path("api/v1/logs", views.LogListView.as_view(), name="api-logs"),
    # Before the tracking id route: "export" is not a tracking id.
    path("api/v1/logs/export", views.LogExportView.as_view(), name="api-logs-export"),
    path("api/v1/logs/<str:tracking_id>", views.LogDetailView.as_view(), name="api-log"),
    # A user id may hold any character, "/" and line breaks included (sent percent-encoded).
    re_path(
        r"^api/v1/users/(?P<user_id>[\s\S]+)/logs$",
        views.UserLogListView.as_view(),
        name="api-user-logs",
    ),
    re_path(
        r"^api/v1/users/(?P<user_id>[\s\S]+)/data$",
        erasure.UserDataView.as_view(),
        name="api-user-data",
    ),
    path("api/v1/erasures/<uuid:job_id>", erasure.ErasureJobView.as_view(), name="api-erasure"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", docs.api_docs, name="api-docs"),
    path("<str:client_id>/logs/query", views.LogQueryView.as_view(), name="compat-logs-query"),
]
