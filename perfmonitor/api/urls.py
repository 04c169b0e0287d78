from django.urls import path

from perfmonitor.api import views_alerts, views_health, views_journeys
from perfmonitor.api import views_analytics as analytics
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
    path("alerts", views_alerts.AlertList.as_view(), name="alerts"),
    path("alerts/statistics", views_alerts.AlertStatistics.as_view(), name="alert-statistics"),
    path("alerts/rules", views_alerts.AlertRuleList.as_view(), name="alert-rules"),
    path("alerts/rules/preview", views_alerts.UnsavedRulePreview.as_view(),
         name="alert-rule-preview-unsaved"),
    path("alerts/rules/<uuid:pk>", views_alerts.AlertRuleDetail.as_view(), name="alert-rule"),
    path("alerts/rules/<uuid:pk>/preview", views_alerts.AlertRulePreview.as_view(),
         name="alert-rule-preview"),
    path("alerts/silences", views_alerts.SilenceList.as_view(), name="alert-silences"),
    path("alerts/silences/<uuid:pk>", views_alerts.SilenceDetail.as_view(),
         name="alert-silence"),
    path("alerts/<uuid:pk>", views_alerts.AlertDetail.as_view(), name="alert"),
    path("alerts/<uuid:pk>/acknowledge", views_alerts.AlertAcknowledge.as_view(),
         name="alert-acknowledge"),
    # analytics (staff): see perfmonitor.api.views_analytics
    path("summary", analytics.SummaryView.as_view(), name="summary"),
    path("score", analytics.ScoreView.as_view(), name="score"),
    path("analysis", analytics.AnalysisView.as_view(), name="analysis"),
    path("vitals", analytics.VitalsView.as_view(), name="vitals"),
    path("vitals/pages", analytics.VitalPagesView.as_view(), name="vitals-pages"),
    path("routes", analytics.RoutesView.as_view(), name="routes"),
    path("queries", analytics.QueriesView.as_view(), name="queries"),
    path("frontend/api", analytics.FrontendApiView.as_view(), name="frontend-api"),
    path("frontend/errors", analytics.FrontendErrorsView.as_view(), name="frontend-errors"),
    path("frontend/resources", analytics.FrontendResourcesView.as_view(),
         name="frontend-resources"),
    path("insights", analytics.InsightsView.as_view(), name="insights"),
    path("impact", analytics.ImpactView.as_view(), name="impact"),
    path("budgets", analytics.BudgetsView.as_view(), name="budgets"),
    path("report", analytics.ReportView.as_view(), name="report"),
]
