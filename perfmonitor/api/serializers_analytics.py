"""Query parameters of the analytics read endpoints, validated with a 400 naming the problem."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from perfmonitor.analytics.query import (
    MAX_WINDOW,
    MIN_WINDOW,
    RANKINGS,
    Window,
    WindowError,
    parse_span,
)
from perfmonitor.analytics.vitals import DEVICE_CLASSES

MAX_LIMIT = 200
MAX_FILTER = 255


def _no_control_characters(value: str) -> str:
    if any(ord(ch) < 32 for ch in value):
        raise serializers.ValidationError("must not contain control characters")
    return value


class WindowQuery(serializers.Serializer):
    window = serializers.CharField(required=False, default="24h", max_length=20,
                                   help_text="Span ending now: 15m, 6h, 7d, 2w.")
    start = serializers.DateTimeField(required=False, help_text="Window start (ISO 8601); "
                                      "with end, instead of window.")
    end = serializers.DateTimeField(required=False, help_text="Window end (ISO 8601).")
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=MAX_LIMIT)
    by = serializers.ChoiceField(choices=RANKINGS, required=False, default="total_time")
    route = serializers.CharField(required=False, max_length=MAX_FILTER,
                                  validators=[_no_control_characters])
    page = serializers.CharField(required=False, max_length=MAX_FILTER,
                                 validators=[_no_control_characters])
    device = serializers.ChoiceField(choices=DEVICE_CLASSES, required=False,
                                     help_text="Device class: narrows Web Vitals.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("end")
        if (start is None) != (end is None):
            raise serializers.ValidationError({"start": "start and end go together"})
        if start is not None and end is not None:
            if end <= start:
                raise serializers.ValidationError({"end": "end must be after start"})
            if not MIN_WINDOW <= end - start <= MAX_WINDOW:
                raise serializers.ValidationError(
                    {"start": "the window must be between 1 minute and 400 days"})
            attrs["window_obj"] = Window(start, end)
        else:
            try:
                attrs["window_obj"] = Window.last(parse_span(attrs["window"]), now=timezone.now())
            except WindowError as exc:
                raise serializers.ValidationError({"window": str(exc)}) from exc
        return attrs


class ReportQuery(WindowQuery):
    window = serializers.CharField(required=False, default="7d", max_length=20)
    format = serializers.ChoiceField(choices=("json", "csv", "html"), required=False,
                                     default="json")
    download = serializers.BooleanField(required=False, default=False)


WINDOW_PARAMS = [
    OpenApiParameter("window", OpenApiTypes.STR, description="15m, 6h, 7d or 2w (default 24h)."),
    OpenApiParameter("start", OpenApiTypes.DATETIME, description="With end, instead of window."),
    OpenApiParameter("end", OpenApiTypes.DATETIME),
]
SUMMARY_PARAMS = [*WINDOW_PARAMS,
                  OpenApiParameter("route", OpenApiTypes.STR, description="Route template."),
                  OpenApiParameter("page", OpenApiTypes.STR, description="Page path."),
                  OpenApiParameter("device", OpenApiTypes.STR, enum=list(DEVICE_CLASSES),
                                   description="Device class: narrows the Web Vitals.")]
VITALS_PARAMS = [*WINDOW_PARAMS,
                 OpenApiParameter("device", OpenApiTypes.STR, enum=list(DEVICE_CLASSES),
                                  description="Device class: only page loads of that class.")]
LIST_PARAMS = [*WINDOW_PARAMS,
               OpenApiParameter("limit", OpenApiTypes.INT, description="1-200 (default 20)."),
               OpenApiParameter("by", OpenApiTypes.STR, enum=list(RANKINGS))]
ROUTE_PARAMS = [*LIST_PARAMS, OpenApiParameter("route", OpenApiTypes.STR)]
