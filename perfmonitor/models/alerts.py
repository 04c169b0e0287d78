from __future__ import annotations

from django.db import models

from perfmonitor.ids import uuid7


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class PerformanceAlert(models.Model):
    """One alert episode; mirrors the original ``performance_alerts`` table."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    alert_id = models.CharField(max_length=255, db_index=True)
    alert_type = models.CharField(max_length=100)
    severity = models.CharField(max_length=20, choices=Severity.choices)
    message = models.TextField()
    threshold = models.FloatField(null=True, blank=True)
    actual_value = models.FloatField(null=True, blank=True)
    timestamp = models.DateTimeField()
    acknowledged = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "perfmonitor_performance_alerts"
        verbose_name = "performance alert"
        ordering = ["-timestamp"]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message}"
