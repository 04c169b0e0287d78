"""The notification message: rendered once when the outbox row is written.

Every notifier renders from this dict, so all attempts of a notification send
the same content, and the row shows exactly what was (or will be) sent.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.urls import NoReverseMatch, reverse

from perfmonitor.alerts.rules import describe_metric, unit_of
from perfmonitor.conf import settings
from perfmonitor.models import PerformanceAlert
from perfmonitor.models.alerts import AlertState

STATUS_WORDS = {"resolved": "RESOLVED", "no_data": "NO DATA", "error": "ERROR"}


def idempotency_key(channel_id: Any, alert_id: Any, event: str) -> str:
    """Stable per (channel, episode, event): the same on every attempt, unique otherwise."""
    digest = hashlib.sha256(f"{channel_id}:{alert_id}:{event}".encode()).hexdigest()
    return f"msg_{digest[:40]}"


def alert_url(alert: PerformanceAlert) -> str:
    try:
        path = reverse("admin:perfmonitor_performancealert_change", args=[alert.pk])
    except NoReverseMatch:
        return ""
    return f"{settings.ALERT_EXTERNAL_URL.rstrip('/')}{path}"


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == " ms" and abs(value) >= 1000:
        return f"{value / 1000:.2f} s"
    if unit == " B" and abs(value) >= 1024 * 1024:
        return f"{value / 1024 / 1024:.2f} MB"
    if unit == " B" and abs(value) >= 1024:
        return f"{value / 1024:.1f} kB"
    text = f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{text}{unit}"


def summary_of(alert: PerformanceAlert) -> str:
    """One line saying what is wrong, e.g. 'p95 of request over 5m is 2.41 s (> 2.00 s)'."""
    rule = alert.rule
    if rule is None:
        return alert.message
    if alert.state in (AlertState.NO_DATA, AlertState.ERROR):
        return f"{rule.name}: {alert.message}"
    unit = unit_of(rule)
    limit = f" ({rule.operator} {format_value(alert.threshold, unit)})" \
        if alert.threshold is not None else ""
    return f"{describe_metric(rule)} is {format_value(alert.actual_value, unit)}{limit}"


def build_message(alert: PerformanceAlert, event: str, now: datetime,
                  escalation_level: int = 0) -> dict[str, Any]:
    status = "resolved" if event == "resolved" else "firing"
    word = STATUS_WORDS.get(event, STATUS_WORDS.get(alert.state, "FIRING"))
    if event.startswith("escalation"):
        word = f"ESCALATED L{escalation_level}"
    elif event.startswith("repeat"):
        word = "STILL FIRING"
    name = alert.labels.get("alertname", alert.alert_type)
    group = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())
                      if k not in ("alertname", "rule", "severity")
                      and not _is_rule_label(alert, k))
    title = f"[{word}:{alert.severity}] {name}" + (f" ({group})" if group else "")
    rule = alert.rule
    annotations = {"summary": summary_of(alert)}
    if rule is not None and rule.description:
        annotations["description"] = rule.description
    if rule is not None and rule.runbook_url:
        annotations["runbook_url"] = rule.runbook_url
    return {
        "event": event,
        "status": status,
        "title": title,
        "text": f"{title}\n{annotations['summary']}",
        "alert": {
            "id": str(alert.pk),
            "alert_id": alert.alert_id,
            "fingerprint": alert.fingerprint,
            "state": alert.state,
            "severity": alert.severity,
            "labels": {**alert.labels, "severity": alert.severity},
            "annotations": annotations,
            "value": alert.actual_value,
            "threshold": alert.threshold,
            "unit": unit_of(rule).strip() if rule is not None else "",
            "starts_at": iso(alert.fired_at or alert.timestamp),
            "ends_at": iso(alert.resolved_at) if status == "resolved" else None,
            "acknowledged": alert.acknowledged,
            "url": alert_url(alert),
        },
        "escalation_level": escalation_level,
        "created_at": iso(now),
    }


def _is_rule_label(alert: PerformanceAlert, key: str) -> bool:
    return bool(alert.rule is not None and key in (alert.rule.labels or {}))
