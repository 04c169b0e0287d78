from perfmonitor.models.alerts import PerformanceAlert
from perfmonitor.models.journeys import UserJourney
from perfmonitor.models.metrics import (
    MetricRollup,
    MonitorHealth,
    PerformanceMetric,
    QueryFingerprint,
    WebVital,
)

__all__ = [
    "MetricRollup",
    "MonitorHealth",
    "PerformanceAlert",
    "PerformanceMetric",
    "QueryFingerprint",
    "UserJourney",
    "WebVital",
]
