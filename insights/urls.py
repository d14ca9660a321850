from django.urls import path

from insights import views

urlpatterns = [path("metrics", views.metrics, name="metrics")]
