from django.urls import include, path

from perfmonitor.api import views_analytics

app_name = "perfmonitor"

urlpatterns = [
    path("api/v1/", include("perfmonitor.api.urls")),
    path("metrics", views_analytics.metrics_view, name="metrics"),
]
