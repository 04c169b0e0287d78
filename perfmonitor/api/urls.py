from django.urls import path

from perfmonitor.api import views_health, views_journeys
from perfmonitor.api.collect import CollectView
from perfmonitor.api.schema import PerfmonitorSchemaView

urlpatterns = [
    path("health", views_health.HealthView.as_view(), name="health"),
    path("collect", CollectView.as_view(), name="collect"),
    path("schema", PerfmonitorSchemaView.as_view(), name="schema"),
    path("journey-types", views_journeys.JourneyTypesView.as_view(), name="journey-types"),
    path("journey-types/<str:journey_type>/analysis", views_journeys.JourneyAnalysisView.as_view(),
         name="journey-analysis"),
    path("journey-types/<str:journey_type>/metrics", views_journeys.JourneyMetricsView.as_view(),
         name="journey-metrics"),
    path("journeys", views_journeys.JourneyListView.as_view(), name="journeys"),
    path("journeys/<str:journey_id>", views_journeys.JourneyDetailView.as_view(),
         name="journey-detail"),
]
