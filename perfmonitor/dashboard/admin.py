"""The dashboard as an entry of perfmonitor's admin app index.

The admin builds its URLs and app index from registered ModelAdmins. The
dashboard has no table, so it is registered on ``Dashboard``: an unmanaged
model that lives in a private app registry. Django's own registry (and with
it migrations, content types and permissions) never sees it, while the admin
gets what it needs to list it under "Performance" and to route
``/admin/perfmonitor/dashboard/`` to our views. The permission is the existing
``perfmonitor.view_dashboard`` (declared on MetricRollup).

Only the views below exist: no add, change, delete or history URL is routed,
so nothing ever queries the (absent) table.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from django.apps.registry import Apps
from django.contrib import admin
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

from perfmonitor.dashboard import views
from perfmonitor.dashboard.permissions import can_view_dashboard

_private_apps = Apps()


class Dashboard(models.Model):
    class Meta:
        apps = _private_apps
        app_label = "perfmonitor"
        managed = False
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"

    def __str__(self) -> str:
        return "Performance dashboard"


class DashboardAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view_dashboard(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_dashboard(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _wrap(self, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        site = self.admin_site

        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return view(request, site, *args, **kwargs)

        # admin_view: login redirect for anonymous users, staff only, never cached.
        wrapped = site.admin_view(update_wrapper(wrapper, view))
        # The monitor's own pages are not the host's traffic: capture skips them.
        wrapped.perfmonitor_ignore = True  # type: ignore[attr-defined]
        return wrapped

    def get_urls(self) -> list[URLPattern]:
        name = "perfmonitor_dashboard"
        wrap = self._wrap
        return [
            path("", wrap(views.overview), name=f"{name}_changelist"),
            path("panel/<slug:panel>/", wrap(views.panel), name=f"{name}_panel"),
            path("route/", wrap(views.route_detail), name=f"{name}_route"),
            path("query/<str:fingerprint>/", wrap(views.query_detail), name=f"{name}_query"),
            path("page/", wrap(views.page_detail), name=f"{name}_page"),
            path("journey/<slug:journey_type>/", wrap(views.journey_detail),
                 name=f"{name}_journey"),
            path("alert/<str:alert_pk>/", wrap(views.alert_detail), name=f"{name}_alert"),
            path("alert/<str:alert_pk>/acknowledge/", wrap(views.acknowledge),
                 name=f"{name}_acknowledge"),
        ]


if not admin.site.is_registered(Dashboard):
    admin.site.register(Dashboard, DashboardAdmin)
