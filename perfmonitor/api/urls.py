from django.urls import path

from perfmonitor.api import views_health

urlpatterns = [
    path("health", views_health.HealthView.as_view(), name="health"),
]
