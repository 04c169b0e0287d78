"""Raw measurement rows, rollups and the monitor's own health.

The first two tables mirror the original schema (``performance_metrics``,
``web_vitals``) column for column. Durations are stored as double precision in
milliseconds: the original's NUMERIC buys nothing for timings and is slower to
aggregate.

Time indexes on the raw tables are BRIN on PostgreSQL (created by migration
0001, PostgreSQL only): they stay tiny on append-only, time-ordered data.
"""

from __future__ import annotations

from django.db import models

from perfmonitor.ids import uuid7


class MetricType(models.TextChoices):
    REQUEST = "request", "Server request"
    QUERY = "query", "SQL query"
    TASK = "task", "Background task"
    API = "api", "Browser API call"
    RENDER = "render", "Component render"
    ERROR = "error", "JavaScript error"
    RESOURCE = "resource", "Resources / bundle"
    MEMORY = "memory", "JS memory"
    CUSTOM = "custom", "Custom"


class PerformanceMetric(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    session_id = models.CharField(max_length=255, blank=True, default="")
    user_id = models.CharField(max_length=64, blank=True, default="")
    metric_type = models.CharField(max_length=50, choices=MetricType.choices)
    metric_name = models.CharField(max_length=255)
    duration = models.FloatField(null=True, blank=True,
                                 help_text="Milliseconds (bytes for resources).")
    timestamp = models.DateTimeField()
    url = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    error_details = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "perfmonitor_performance_metrics"
        verbose_name = "performance metric"
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["metric_type", "metric_name", "timestamp"],
                         name="pm_metrics_type_name"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_type} {self.metric_name} {self.duration}"


class WebVital(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    session_id = models.CharField(max_length=255, blank=True, default="")
    user_id = models.CharField(max_length=64, blank=True, default="")
    metric_name = models.CharField(max_length=10)
    value = models.FloatField()
    rating = models.CharField(max_length=20)
    timestamp = models.DateTimeField()
    url = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "perfmonitor_web_vitals"
        verbose_name = "web vital"
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["metric_name", "timestamp"], name="pm_vitals_name_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_name}={self.value} ({self.rating})"


class RollupKind(models.TextChoices):
    REQUEST = "request", "Server request"
    QUERY = "query", "SQL query"
    TASK = "task", "Background task"
    VITAL = "vital", "Web Vital"
    VITAL_MOBILE = "vital:mobile", "Web Vital (mobile)"
    VITAL_TABLET = "vital:tablet", "Web Vital (tablet)"
    VITAL_DESKTOP = "vital:desktop", "Web Vital (desktop)"
    API = "api", "Browser API call"
    RENDER = "render", "Component render"
    ERROR = "error", "JavaScript error"
    RESOURCE = "resource", "Resource size"
    MEMORY = "memory", "JS memory"
    CUSTOM = "custom", "Custom"
    JOURNEY = "journey", "Journey"
    JOURNEY_STEP = "journey_step", "Journey step"


class MetricRollup(models.Model):
    """Aggregates of one series over one bucket.

    A series is (kind, name, dimension); see perfmonitor.capture.records for what
    each kind puts in name and dimension. Every flush appends a partial row per
    series and minute; compaction merges the partial rows of closed minutes into
    one and builds hourly rows. ``sketch`` is a serialized QuantileSketch.
    """

    MINUTE = 60
    HOUR = 3600

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16, choices=RollupKind.choices)
    name = models.CharField(max_length=255)
    dimension = models.CharField(max_length=255, blank=True, default="")
    bucket_start = models.DateTimeField()
    resolution = models.PositiveIntegerField(default=MINUTE)
    count = models.BigIntegerField(default=0)
    sum = models.FloatField(default=0.0)
    min = models.FloatField(null=True)
    max = models.FloatField(null=True)
    errors = models.BigIntegerField(default=0)
    sketch = models.BinaryField(default=b"")
    compacted = models.BooleanField(default=False)

    class Meta:
        db_table = "perfmonitor_metric_rollups"
        verbose_name = "metric rollup"
        ordering = ["-bucket_start"]
        indexes = [
            models.Index(fields=["kind", "name", "resolution", "bucket_start"],
                         name="pm_rollup_series"),
            models.Index(fields=["resolution", "bucket_start", "kind"], name="pm_rollup_time"),
        ]
        permissions = [("view_dashboard", "Can view the performance dashboard")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}[{self.dimension}] @{self.bucket_start:%Y-%m-%d %H:%M}"


class QueryFingerprint(models.Model):
    """Normalized SQL (placeholders only, never parameter values) by fingerprint."""

    fingerprint = models.CharField(max_length=32, primary_key=True)
    sql = models.TextField()
    first_seen = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "perfmonitor_query_fingerprints"
        verbose_name = "query fingerprint"

    def __str__(self) -> str:
        return f"{self.fingerprint} {self.sql[:80]}"


class MonitorHealth(models.Model):
    """The monitor's own counters, one row per process, written by its flusher."""

    process = models.CharField(max_length=255, primary_key=True, help_text="host:pid")
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    captured = models.BigIntegerField(default=0)
    flushed = models.BigIntegerField(default=0)
    dropped = models.BigIntegerField(default=0)
    flush_errors = models.BigIntegerField(default=0)
    internal_errors = models.BigIntegerField(default=0)
    buffer_size = models.IntegerField(default=0)
    last_flush_at = models.DateTimeField(null=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "perfmonitor_monitor_health"
        verbose_name = "monitor health"
        verbose_name_plural = "monitor health"
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.process
