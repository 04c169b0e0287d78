"""Staff-only read endpoints for journeys (permission ``perfmonitor.view_dashboard``).

=====================================================  =====================================
``GET journey-types``                                  every type with its steps and targets
``GET journey-types/<type>/analysis?window=24h``       funnel analysis (``&breakdown=device``)
``GET journey-types/<type>/metrics?window=1h``         the alertable metrics, from rollups
``GET journeys?type=login&status=failed&limit=50``     the newest journeys, with their steps
``GET journeys/<journey_id>``                          one journey, every step with durations
=====================================================  =====================================

``window`` is a span ending now: ``15m``, ``6h``, ``7d``, ``2w`` (1 minute to 400 days).
Bad parameters get a 400 naming the parameter; an unknown type or id a 404.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from perfmonitor.analytics.query import WindowError, parse_span
from perfmonitor.api.permissions import CanViewDashboard
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.journeys.analysis import BREAKDOWN_KEY_RE, analyze_journey
from perfmonitor.journeys.definitions import JourneyDefinition, journey_types
from perfmonitor.journeys.metrics import METRICS, journey_metric
from perfmonitor.journeys.tracker import JOURNEY_ID_RE
from perfmonitor.models import UserJourney
from perfmonitor.models.journeys import JourneyStatus

MAX_LIMIT = 200

WINDOW_PARAM = OpenApiParameter("window", OpenApiTypes.STR, description="15m, 6h, 7d or 2w.")


def parse_window(request: Request, default: str) -> timedelta:
    try:
        return parse_span(request.query_params.get("window", default))
    except WindowError as exc:
        raise ValidationError({"window": str(exc)}) from None


def definition_or_404(journey_type: str) -> JourneyDefinition:
    definition = journey_types().get(journey_type)
    if definition is None:
        raise NotFound(f"Unknown journey type {journey_type!r}.")
    return definition


def journey_as_dict(row: UserJourney) -> dict[str, Any]:
    return {
        "journey_id": row.journey_id, "journey_type": row.journey_type, "status": row.status,
        "user_id": row.user_id, "session_id": row.session_id,
        "start_time": row.start_time.isoformat(),
        "end_time": row.end_time.isoformat() if row.end_time else None,
        "duration_ms": row.duration, "completed": row.completed, "abandoned": row.abandoned,
        "abandonment_reason": row.abandonment_reason, "metadata": row.metadata,
        "steps": row.steps,
    }


class JourneyTypesView(APIView):
    """Every journey type, built-in and configured, with its steps and time targets."""

    permission_classes = [CanViewDashboard]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response({"types": [d.as_dict() for d in journey_types().values()]})


class JourneyAnalysisView(APIView):
    """Counts, rates, funnel, timings, bottleneck, critical path, Apdex and trend."""

    permission_classes = [CanViewDashboard]

    @extend_schema(parameters=[WINDOW_PARAM, OpenApiParameter(
        "breakdown", OpenApiTypes.STR, description="A metadata key: device, plan, course...")],
        responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, journey_type: str) -> Response:
        definition = definition_or_404(journey_type)
        span = parse_window(request, "24h")
        breakdown = request.query_params.get("breakdown") or None
        if breakdown is not None and not BREAKDOWN_KEY_RE.match(breakdown):
            raise ValidationError({"breakdown": "breakdown must be 1-64 letters, digits or '_'."})
        return Response(analyze_journey(definition.key, span, breakdown))


class JourneyMetricsView(APIView):
    """The metrics alert rules use (completion rate, p75 duration...), from the rollups."""

    permission_classes = [CanViewDashboard]

    @extend_schema(parameters=[WINDOW_PARAM], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, journey_type: str) -> Response:
        definition = definition_or_404(journey_type)
        span = parse_window(request, "1h")
        with capture_suppressed():
            values = {metric: journey_metric(definition.key, metric, span) for metric in METRICS}
        return Response({"journey_type": definition.key, "window_seconds": span.total_seconds(),
                         "target_ms": definition.target_ms, "metrics": values})


class JourneyListView(APIView):
    """The newest journeys, optionally of one type and status."""

    permission_classes = [CanViewDashboard]

    @extend_schema(parameters=[
        OpenApiParameter("type", OpenApiTypes.STR), OpenApiParameter("status", OpenApiTypes.STR),
        OpenApiParameter("limit", OpenApiTypes.INT, description=f"1..{MAX_LIMIT}, default 50")],
        responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        query = UserJourney.objects.all()
        journey_type = request.query_params.get("type")
        if journey_type:
            query = query.filter(journey_type=definition_or_404(journey_type).key)
        status = request.query_params.get("status")
        if status:
            if status not in JourneyStatus.values:
                raise ValidationError({"status": f"status must be one of "
                                                 f"{', '.join(JourneyStatus.values)}."})
            query = query.filter(status=status)
        raw_limit = request.query_params.get("limit", "50")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise ValidationError({"limit": f"limit must be a whole number from 1 to {MAX_LIMIT}."})
        with capture_suppressed():
            rows = list(query.order_by("-start_time")[:int(raw_limit)])
        return Response({"journeys": [journey_as_dict(row) for row in rows]})


class JourneyDetailView(APIView):
    """One journey with every step, its duration and order flags."""

    permission_classes = [CanViewDashboard]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, journey_id: str) -> Response:
        if not JOURNEY_ID_RE.match(journey_id):
            raise NotFound("No such journey.")
        with capture_suppressed():
            row = UserJourney.objects.filter(journey_id=journey_id).first()
        if row is None:
            raise NotFound("No such journey.")
        return Response(journey_as_dict(row))
