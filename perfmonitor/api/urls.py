from django.urls import path

from perfmonitor.api import views_health
from perfmonitor.api.collect import CollectView
from perfmonitor.api.schema import PerfmonitorSchemaView

urlpatterns = [
    path("health", views_health.HealthView.as_view(), name="health"),
    path("collect", CollectView.as_view(), name="collect"),
    path("schema", PerfmonitorSchemaView.as_view(), name="schema"),
]
