"""Delete data past its retention, in batches so no statement holds locks for long.

Raw rows (``performance_metrics``, ``web_vitals``) are kept RAW_RETENTION_DAYS,
minute rollups MINUTE_ROLLUP_RETENTION_DAYS, hourly rollups
HOUR_ROLLUP_RETENTION_DAYS, and the health rows of processes that stopped
reporting RAW_RETENTION_DAYS. Each batch is its own short statement (no
surrounding transaction), on the database the router picks for writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models, router
from django.utils import timezone

from perfmonitor.capture.context import capture_suppressed
from perfmonitor.conf import settings
from perfmonitor.models import MetricRollup, MonitorHealth, PerformanceMetric, WebVital


def _delete_in_batches(queryset: models.QuerySet, batch_size: int) -> int:
    model = queryset.model
    alias = router.db_for_write(model)
    # No ORDER BY: the model's default ordering would sort every old row per batch.
    ids_query = queryset.using(alias).order_by().values_list("pk", flat=True)
    deleted = 0
    while True:
        ids = list(ids_query[:batch_size])
        if not ids:
            return deleted
        count, _ = model.objects.using(alias).filter(pk__in=ids).delete()
        deleted += count
        if len(ids) < batch_size:
            return deleted


def cutoffs(now: datetime | None = None) -> dict[str, datetime]:
    now = now or timezone.now()
    return {
        "raw": now - timedelta(days=settings.RAW_RETENTION_DAYS),
        "minute": now - timedelta(days=settings.MINUTE_ROLLUP_RETENTION_DAYS),
        "hour": now - timedelta(days=settings.HOUR_ROLLUP_RETENTION_DAYS),
    }


def expired(now: datetime | None = None) -> dict[str, models.QuerySet]:
    """What is past its retention, per table (querysets, nothing deleted)."""
    cut = cutoffs(now)
    return {
        "performance_metrics": PerformanceMetric.objects.filter(timestamp__lt=cut["raw"]),
        "web_vitals": WebVital.objects.filter(timestamp__lt=cut["raw"]),
        "minute_rollups": MetricRollup.objects.filter(
            resolution=MetricRollup.MINUTE, bucket_start__lt=cut["minute"]),
        "hour_rollups": MetricRollup.objects.filter(
            resolution=MetricRollup.HOUR, bucket_start__lt=cut["hour"]),
        "monitor_health": MonitorHealth.objects.filter(updated_at__lt=cut["raw"]),
    }


def prune(now: datetime | None = None, batch_size: int | None = None) -> dict[str, int]:
    """Delete what is past retention; return rows deleted per table."""
    batch = batch_size or settings.PRUNE_BATCH_SIZE
    with capture_suppressed():
        return {table: _delete_in_batches(queryset, batch)
                for table, queryset in expired(now).items()}


def count_expired(now: datetime | None = None) -> dict[str, int]:
    """Rows prune() would delete now, per table."""
    with capture_suppressed():
        return {table: queryset.using(router.db_for_write(queryset.model)).count()
                for table, queryset in expired(now).items()}
