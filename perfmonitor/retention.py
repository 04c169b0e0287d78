"""Delete data past its retention, in batches so no statement holds locks for long."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

from perfmonitor.capture.context import capture_suppressed
from perfmonitor.conf import settings
from perfmonitor.models import MetricRollup, PerformanceMetric, WebVital


def _delete_in_batches(queryset: models.QuerySet, batch_size: int) -> int:
    deleted = 0
    model = queryset.model
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        count, _ = model.objects.filter(pk__in=ids).delete()
        deleted += count


def prune(now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    batch = settings.PRUNE_BATCH_SIZE
    raw_cutoff = now - timedelta(days=settings.RAW_RETENTION_DAYS)
    result = {}
    with capture_suppressed():
        result["performance_metrics"] = _delete_in_batches(
            PerformanceMetric.objects.filter(timestamp__lt=raw_cutoff), batch)
        result["web_vitals"] = _delete_in_batches(
            WebVital.objects.filter(timestamp__lt=raw_cutoff), batch)
        result["minute_rollups"] = _delete_in_batches(MetricRollup.objects.filter(
            resolution=MetricRollup.MINUTE,
            bucket_start__lt=now - timedelta(days=settings.MINUTE_ROLLUP_RETENTION_DAYS)), batch)
        result["hour_rollups"] = _delete_in_batches(MetricRollup.objects.filter(
            resolution=MetricRollup.HOUR,
            bucket_start__lt=now - timedelta(days=settings.HOUR_ROLLUP_RETENTION_DAYS)), batch)
    return result
