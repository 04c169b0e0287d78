"""``GET api/v1/schema``: the OpenAPI 3 document of perfmonitor's own API.

Only perfmonitor's endpoints are described (not the host's DRF views), under the
prefix the host mounted perfmonitor at. YAML by default, JSON with
``?format=json`` or ``Accept: application/vnd.oai.openapi+json``.
"""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response

SCHEMA_SETTINGS = {
    "TITLE": "perfmonitor API",
    "DESCRIPTION": "Browser beacons (collect) and staff-only read endpoints of perfmonitor.",
    "VERSION": "1",
}


class PerfmonitorSchemaView(SpectacularAPIView):
    custom_settings = SCHEMA_SETTINGS
    perfmonitor_ignore = True

    def _get_schema_response(self, request: Request) -> Response:
        # request.path ends with ".../api/v1/schema"; the API lives next to it.
        prefix = request.path_info.rsplit("/", 1)[0].lstrip("/") + "/"
        self.patterns: list[Any] = [path(prefix, include("perfmonitor.api.urls"))]
        return super()._get_schema_response(request)
