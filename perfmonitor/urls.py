"""perfmonitor's URLs: ``path("perfmonitor/", include("perfmonitor.urls"))``.

The API (Django REST framework, drf-spectacular, the analytics) is imported when
a request first reaches it, not when the host's URLconf loads: Django resolves
URLs in order and stops at the first match, so the site's own requests never
import it, and no worker's first request pays ~0.2 s for it. Reversing a URL or
running the system checks walks every pattern and imports it then.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.urls.resolvers import RoutePattern, URLResolver

app_name = "perfmonitor"


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET perfmonitor/metrics`` (Prometheus text format), imported on first use."""
    from perfmonitor.api.views_analytics import metrics_view as view

    return view(request)


metrics_view.perfmonitor_ignore = True  # type: ignore[attr-defined]

urlpatterns: list[Any] = [
    # What include("perfmonitor.api.urls") builds, minus its eager import: a
    # resolver given a module name imports it on first use.
    URLResolver(RoutePattern("api/v1/", is_endpoint=False), "perfmonitor.api.urls"),
    path("metrics", metrics_view, name="metrics"),
]
