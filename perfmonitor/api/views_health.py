from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from perfmonitor.api.permissions import CanViewDashboard
from perfmonitor.health import health_report


class HealthView(APIView):
    """The monitor's own health: per process counters and flush age."""

    permission_classes = [CanViewDashboard]

    def get(self, request: Request) -> Response:
        return Response(health_report())
