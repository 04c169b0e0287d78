"""Arranging alerting data: rollup rows as the flusher writes them, channels, rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from perfmonitor.analytics.sketch import QuantileSketch
from perfmonitor.models import AlertRule, MetricRollup, NotificationChannel


def origin() -> datetime:
    """A whole hour a few hours ago: recent enough for minute-rollup retention."""
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)


def write_minute(kind: str, name: str, dimension: str, minute: datetime, value: float,
                 count: int = 30, errors: int = 0) -> MetricRollup:
    """One minute of a series: ``count`` samples of ``value`` (``errors`` of them failed)."""
    sketch = QuantileSketch()
    sketch.add(value, count)
    return MetricRollup.objects.create(
        kind=kind, name=name, dimension=dimension, bucket_start=minute,
        resolution=MetricRollup.MINUTE, count=count, sum=value * count, min=value, max=value,
        errors=errors, sketch=sketch.to_bytes())


def make_rule(**fields: Any) -> AlertRule:
    channels = fields.pop("channels", [])
    values: dict[str, Any] = {
        "key": "test-rule", "name": "Slow courses", "kind": "request", "aggregation": "p95",
        "window_seconds": 60, "warning_threshold": 2000.0, "group_wait_seconds": 0,
        "group_interval_seconds": 60, "repeat_interval_seconds": 3600,
    }
    values.update(fields)
    rule = AlertRule(**values)
    rule.full_clean()
    rule.save()
    rule.channels.set(channels)
    return rule


def make_channel(name: str, type: str = "in_app", **fields: Any) -> NotificationChannel:  # noqa: A002
    return NotificationChannel.objects.create(name=name, type=type, **fields)


def pm_settings(**overrides: Any) -> dict[str, Any]:
    """The test PERFMONITOR dict plus overrides (for override_settings)."""
    from django.conf import settings

    return {**settings.PERFMONITOR, **overrides}


def fire(rule: AlertRule, value: float = 2500.0, route: str = "/courses/",
         at: datetime | None = None) -> datetime:
    """Write one breaching minute for ``rule`` and evaluate; returns the evaluation time."""
    from perfmonitor.alerts.engine import evaluate_rules

    minute = at or origin()
    write_minute(rule.kind, route, "GET", minute, value)
    evaluated = minute + timedelta(minutes=1)
    evaluate_rules(evaluated, rules=[AlertRule.objects.prefetch_related("channels")
                                     .get(pk=rule.pk)])
    return evaluated
