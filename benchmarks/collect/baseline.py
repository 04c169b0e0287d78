"""The plain way, for comparison: a Django view that parses the batch and bulk_creates one
row per event in the request (no validation beyond the JSON, no rollups, no buffer)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from perfmonitor.models import PerformanceMetric, WebVital


def rows_of(batch: dict[str, Any], now: datetime) -> tuple[list[WebVital],
                                                            list[PerformanceMetric]]:
    session, page = batch.get("session_id", ""), batch.get("page", "")
    vitals, metrics = [], []
    for event in batch["events"]:
        kind = event.get("type")
        if kind == "vital":
            vitals.append(WebVital(timestamp=now, session_id=session, metric_name=event["name"],
                                   value=event["value"], url=page, metadata={"id": event["id"]}))
        else:
            name = event.get("url") or event.get("component") or event.get("name") or kind
            duration = event.get("duration", event.get("value"))
            metrics.append(PerformanceMetric(
                timestamp=now, session_id=session, metric_type=kind, metric_name=name[:255],
                duration=duration if isinstance(duration, int | float) else None, url=page,
                metadata=event))
    return vitals, metrics


@csrf_exempt
def collect(request: HttpRequest) -> HttpResponse:
    batch = json.loads(request.body)
    vitals, metrics = rows_of(batch, datetime.now(UTC))
    with transaction.atomic():
        WebVital.objects.bulk_create(vitals)
        PerformanceMetric.objects.bulk_create(metrics)
    return HttpResponse(b'{"accepted": %d}' % len(batch["events"]), status=202,
                        content_type="application/json")
