from perfmonitor.models.alerts import (
    AlertEvaluation,
    AlertRule,
    MaintenanceWindow,
    PerformanceAlert,
    Silence,
)
from perfmonitor.models.journeys import UserJourney
from perfmonitor.models.metrics import (
    MetricRollup,
    MonitorHealth,
    PerformanceMetric,
    QueryFingerprint,
    WebVital,
)
from perfmonitor.models.notifications import (
    AlertNotification,
    InAppNotification,
    NotificationChannel,
    NotificationDelivery,
)

__all__ = [
    "MetricRollup",
    "MonitorHealth",
    "PerformanceAlert",
    "PerformanceMetric",
    "QueryFingerprint",
    "UserJourney",
    "WebVital",
    "AlertEvaluation",
    "AlertNotification",
    "AlertRule",
    "InAppNotification",
    "MaintenanceWindow",
    "NotificationChannel",
    "NotificationDelivery",
    "Silence",
]
