"""Dashboard pages and htmx partials, served as views of the admin site.

Every view is wrapped by ``AdminSite.admin_view`` (login redirect, staff only,
never cached) and then checks ``perfmonitor.view_dashboard`` itself. Numbers
come from :mod:`perfmonitor.dashboard.panels` and the drill-down builders,
which call the analytics, journeys and alerting packages.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from perfmonitor.analytics.overview import FILTER_SCOPE, SUPPORTED_FILTERS
from perfmonitor.conf import settings
from perfmonitor.dashboard import drilldowns, panels, sources
from perfmonitor.dashboard.controls import (
    DEVICES,
    RANGE_LABELS,
    ControlError,
    Controls,
    parse_controls,
)
from perfmonitor.dashboard.permissions import can_acknowledge_alerts, can_view_dashboard
from perfmonitor.routing import LIVE_PATH

TEMPLATES = "perfmonitor/dashboard/"


def _require_view(request: HttpRequest) -> None:
    if not can_view_dashboard(request.user):
        raise PermissionDenied("Staff with the perfmonitor.view_dashboard permission only.")


def _bad_request(message: str) -> HttpResponse:
    return HttpResponseBadRequest(f"Bad dashboard parameter: {message}\n",
                                  content_type="text/plain; charset=utf-8")


def _page_context(request: HttpRequest, site: AdminSite, controls: Controls,
                  title: str) -> dict[str, Any]:
    overview_url = reverse("admin:perfmonitor_dashboard_changelist", current_app=site.name)
    return {
        **site.each_context(request),
        "title": title,
        "overview_url": overview_url,
        "controls": controls,
        "ranges": RANGE_LABELS,
        "devices": DEVICES,
        "export": sources.report_links(controls),
        "live_path": "/" + LIVE_PATH,
        "poll_seconds": settings.DASHBOARD_POLL_SECONDS,
        "min_refresh_seconds": settings.DASHBOARD_MIN_REFRESH_SECONDS,
        "can_acknowledge": can_acknowledge_alerts(request.user),
        # Each filter narrows only the panels whose data has its dimension: say which,
        # rather than let unfiltered numbers pass for filtered ones.
        "unsupported_filters": [key for key in controls.filters()
                                if key not in SUPPORTED_FILTERS],
        "filter_scope": [{"key": key, "value": value, "scope": FILTER_SCOPE[key]}
                         for key, value in controls.filters().items() if key in FILTER_SCOPE],
    }


@require_GET
def overview(request: HttpRequest, site: AdminSite) -> HttpResponse:
    _require_view(request)
    try:
        controls = parse_controls(request.GET)
    except ControlError as exc:
        return _bad_request(str(exc))
    board = panels.Board(controls, request=request, site_name=site.name)
    context = _page_context(request, site, controls, "Performance dashboard")
    with panels.reading():
        context["panels"] = board.render_all()
    return TemplateResponse(request, TEMPLATES + "overview.html", context)


@require_GET
def panel(request: HttpRequest, site: AdminSite, panel: str) -> HttpResponse:
    _require_view(request)
    if panel not in panels.PANELS:
        raise Http404(f"No dashboard panel named {panel!r}.")
    try:
        controls = parse_controls(request.GET)
    except ControlError as exc:
        return _bad_request(str(exc))
    board = panels.Board(controls, request=request, site_name=site.name)
    with panels.reading():
        rendered = board.render(panel)
    context = {"panel": rendered, "controls": controls,
               "can_acknowledge": can_acknowledge_alerts(request.user)}
    return TemplateResponse(request, TEMPLATES + "panel.html", context)


def _drilldown(request: HttpRequest, site: AdminSite, title: str, template: str,
               build: Any) -> HttpResponse:
    _require_view(request)
    try:
        controls = parse_controls(request.GET)
        with panels.reading():
            data = build(controls)
    except ControlError as exc:
        return _bad_request(str(exc))
    except drilldowns.NotFound as exc:
        raise Http404(str(exc)) from exc
    except drilldowns.BadParameter as exc:
        return _bad_request(str(exc))
    context = _page_context(request, site, controls, title)
    context["data"] = data
    context["detail_title"] = title
    return TemplateResponse(request, TEMPLATES + template, context)


@require_GET
def route_detail(request: HttpRequest, site: AdminSite) -> HttpResponse:
    name = request.GET.get("name", "")
    return _drilldown(request, site, f"Route {name}", "route.html",
                      lambda c: drilldowns.route(c, name, method=request.GET.get("method", "")))


@require_GET
def query_detail(request: HttpRequest, site: AdminSite, fingerprint: str) -> HttpResponse:
    return _drilldown(request, site, f"Query {fingerprint}", "query.html",
                      lambda c: drilldowns.query_detail(c, fingerprint))


@require_GET
def page_detail(request: HttpRequest, site: AdminSite) -> HttpResponse:
    url = request.GET.get("url", "")
    return _drilldown(request, site, f"Page {url}", "page.html",
                      lambda c: drilldowns.page(c, url))


@require_GET
def journey_detail(request: HttpRequest, site: AdminSite, journey_type: str) -> HttpResponse:
    return _drilldown(request, site, f"Journey {journey_type}", "journey.html",
                      lambda c: drilldowns.journey(c, journey_type))


@require_GET
def alert_detail(request: HttpRequest, site: AdminSite, alert_pk: str) -> HttpResponse:
    return _drilldown(request, site, "Alert", "alert.html",
                      lambda c: drilldowns.alert(c, alert_pk))


@require_POST
def acknowledge(request: HttpRequest, site: AdminSite, alert_pk: str) -> HttpResponse:
    _require_view(request)
    if not can_acknowledge_alerts(request.user):
        raise PermissionDenied("Acknowledging needs perfmonitor.change_performancealert.")
    try:
        controls = parse_controls(request.GET)
    except ControlError as exc:
        return _bad_request(str(exc))
    try:
        outcome = sources.acknowledge_alert(alert_pk, request.user)
    except sources.AlertNotFound as exc:
        raise Http404(str(exc)) from exc
    if getattr(request, "htmx", False):
        board = panels.Board(controls, request=request, site_name=site.name)
        with panels.reading():
            rendered = board.render("alerts", notice=outcome.message)
        context = {"panel": rendered, "controls": controls, "can_acknowledge": True}
        return TemplateResponse(request, TEMPLATES + "panel.html", context)
    (messages.success if outcome.acknowledged else messages.warning)(request, outcome.message)
    url = reverse("admin:perfmonitor_dashboard_changelist", current_app=site.name)
    return redirect(f"{url}?{controls.query_string()}", permanent=False)
