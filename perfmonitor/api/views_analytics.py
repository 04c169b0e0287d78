"""Staff-only analytics read endpoints (permission ``perfmonitor.view_dashboard``).

=================================  ==================================================
``GET summary``                    the dashboard overview query set (``route``, ``page``,
                                   ``device``)
``GET score``                      the overall score and its parts
``GET analysis``                   structured analysis: score breakdown, industry
                                   comparison, Core Web Vitals
``GET vitals``                     site Web Vitals: p75, good/NI/poor shares, verdict,
                                   page tally (``device``: mobile, tablet or desktop)
``GET vitals/pages``               the same per page (``page`` narrows to one; ``device``)
``GET routes``                     top routes (``by``: total_time, p95, error_rate,
                                   count, mean; ``limit``)
``GET queries``                    top SQL fingerprints with their SQL
``GET frontend/api``               browser API calls per endpoint and method
``GET frontend/errors``            JS errors per fingerprint and page, with change
``GET frontend/resources``         bundle and resource sizes per page against budget
``GET insights``                   prioritized recommendations
``GET impact``                     business impact (journey completion by vital and
                                   latency bucket)
``GET budgets``                    configured performance budgets and their state
``GET report?format=json|csv|html`` the report, as a download
=================================  ==================================================

Every endpoint takes ``window`` (``15m``, ``6h``, ``7d``, ``2w``; default 24 h).
Bad parameters get a 400 that names the parameter, never a 500.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from perfmonitor.analytics import frontend, overview, scores
from perfmonitor.analytics.assessment import assess_pages, assessment
from perfmonitor.analytics.benchmarks import compare_with_industry
from perfmonitor.analytics.query import Window, WindowError, parse_span, pinned_marks
from perfmonitor.api.permissions import CanViewDashboard
from perfmonitor.api.serializers_analytics import (
    LIST_PARAMS,
    ROUTE_PARAMS,
    SUMMARY_PARAMS,
    VITALS_PARAMS,
    WINDOW_PARAMS,
    ReportQuery,
    WindowQuery,
)


class AnalyticsView(APIView):
    """Base: staff permission, window parsing, the monitor's own reads not captured."""

    permission_classes = [CanViewDashboard]
    perfmonitor_ignore = True
    query_class = WindowQuery

    def params(self, request: Request) -> dict[str, Any]:
        query = self.query_class(data=request.query_params)
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)

    def window(self, params: dict[str, Any]) -> Window:
        try:
            return params["window_obj"]
        except KeyError:  # pragma: no cover - the serializer always sets it
            raise ValidationError({"window": "missing"}) from None

    def get(self, request: Request) -> Response:
        params = self.params(request)
        with pinned_marks():
            data = self.build(self.window(params), params)
        return Response(data)

    def build(self, window: Window, params: dict[str, Any]) -> Any:  # pragma: no cover
        raise NotImplementedError


class SummaryView(AnalyticsView):
    """Score, overview cards with change, vitals per page, top routes, trends."""

    @extend_schema(parameters=SUMMARY_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        filters = {k: params[k] for k in ("route", "page", "device") if params.get(k)}
        return overview.dashboard_summary(window, filters)


class ScoreView(AnalyticsView):
    @extend_schema(parameters=WINDOW_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        analysis = scores.analyze_performance(window)
        return {"window": analysis["window"], "score": analysis["score"],
                "low": analysis["low"], "low_threshold": analysis["low_threshold"],
                "parts": {k: p["score"] for k, p in analysis["parts"].items()},
                "weights": analysis["weights"], "how": analysis["how"]}


class AnalysisView(AnalyticsView):
    @extend_schema(parameters=WINDOW_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        analysis = scores.analyze_performance(window)
        vitals = assessment(window)
        return {"performance": analysis, "core_web_vitals": vitals,
                "benchmarks": compare_with_industry(window, analysis=analysis,
                                                    vitals=vitals["site"])}


class VitalsView(AnalyticsView):
    @extend_schema(parameters=VITALS_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        result = assessment(window, device=params.get("device"))
        return {"window": result["window"], "device": result["device"],
                "site": result["site"], "page_tally": result["page_tally"]}


class VitalPagesView(AnalyticsView):
    @extend_schema(parameters=SUMMARY_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        return {"window": window.as_dict(), "device": params.get("device"),
                "pages": assess_pages(window, params.get("page"), params.get("device"))}


class RoutesView(AnalyticsView):
    query_class = WindowQuery

    @extend_schema(parameters=ROUTE_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        return {"window": window.as_dict(), "by": params["by"],
                "routes": frontend.top_series("request", window, by=params["by"],
                                              limit=params["limit"], name=params.get("route"),
                                              labels=("route", "method"))}


class QueriesView(AnalyticsView):
    @extend_schema(parameters=LIST_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        return {"window": window.as_dict(), "by": params["by"],
                "queries": frontend.top_queries(window, by=params["by"],
                                                limit=params["limit"],
                                                route=params.get("route"))}


class FrontendApiView(AnalyticsView):
    @extend_schema(parameters=LIST_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        return frontend.api_summary(window, by=params["by"], limit=params["limit"])


class FrontendErrorsView(AnalyticsView):
    @extend_schema(parameters=LIST_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        return frontend.error_summary(window, limit=params["limit"])


class FrontendResourcesView(AnalyticsView):
    @extend_schema(parameters=SUMMARY_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        return frontend.resource_summary(window, page=params.get("page"))


class InsightsView(AnalyticsView):
    @extend_schema(parameters=LIST_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        from perfmonitor.analytics.insights import generate_insights

        return {"window": window.as_dict(),
                "insights": generate_insights(window, limit=params["limit"])}


class ImpactView(AnalyticsView):
    @extend_schema(parameters=WINDOW_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        from perfmonitor.analytics.impact import business_impact

        return business_impact(window)


class BudgetsView(AnalyticsView):
    @extend_schema(parameters=WINDOW_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return super().get(request)

    def build(self, window: Window, params: dict[str, Any]) -> Any:
        from perfmonitor.analytics.budgets import check_budgets

        return check_budgets(window).as_dict()


class ReportView(AnalyticsView):
    """The report as a file: ``format`` json (default), csv or html."""

    query_class = ReportQuery

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # ``format`` names the report's format here, not a DRF renderer override.
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(parameters=[*WINDOW_PARAMS, OpenApiParameter(
        "format", OpenApiTypes.STR, enum=["json", "csv", "html"])],
        responses={(200, "application/json"): OpenApiTypes.OBJECT,
                   (200, "text/csv"): OpenApiTypes.STR, (200, "text/html"): OpenApiTypes.STR})
    def get(self, request: Request) -> HttpResponse:  # type: ignore[override]
        from perfmonitor.analytics.reports import build_report, render

        params = self.params(request)
        fmt = params["format"]
        with pinned_marks():
            report = build_report(self.window(params))
        body, content_type, filename = render(report, fmt)
        response = HttpResponse(body, content_type=content_type)
        if fmt != "html" or params.get("download"):
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response




def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET perfmonitor/metrics``: Prometheus text format; staff login or bearer token."""
    import hmac

    from perfmonitor.analytics.prometheus import CONTENT_TYPE, exposition
    from perfmonitor.conf import settings

    token = settings.METRICS_BEARER_TOKEN
    header = request.headers.get("Authorization", "")
    by_token = bool(token) and header.startswith("Bearer ") and hmac.compare_digest(
        header[len("Bearer "):].strip().encode(), str(token).encode())
    user: Any = getattr(request, "user", None)
    by_login = bool(user is not None and user.is_authenticated and user.is_staff
                    and user.has_perm("perfmonitor.view_dashboard"))
    if not (by_token or by_login):
        authenticated = bool(user and user.is_authenticated)
        response = HttpResponse("Staff with perfmonitor.view_dashboard, or a bearer token.\n",
                                status=403 if authenticated else 401,
                                content_type="text/plain; charset=utf-8")
        if not authenticated:
            response["WWW-Authenticate"] = 'Bearer realm="perfmonitor"'
        return response
    window = None
    if request.GET.get("window"):
        try:
            window = Window.last(parse_span(request.GET["window"]))
        except WindowError as exc:
            return HttpResponse(f"window: {exc}\n", status=400,
                                content_type="text/plain; charset=utf-8")
    return HttpResponse(exposition(window), content_type=CONTENT_TYPE)


metrics_view.perfmonitor_ignore = True  # type: ignore[attr-defined]
