"""URLs of benchmark servers: the benchmark-only views, then every URL of the project."""

from django.urls import path

from bench import floor_app
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("bench/ready", floor_app.ready, name="bench-ready"),
    path("bench/floor", floor_app.insert_row, name="bench-floor"),
    *project_urlpatterns,
]
