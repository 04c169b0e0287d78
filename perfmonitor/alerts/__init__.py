"""Alerting: rules evaluated every minute, the alert lifecycle, notifications via an outbox.

Entry points (the Celery tasks in ``perfmonitor.tasks`` are thin wrappers):

* ``perfmonitor.alerts.engine.evaluate_rules(now=None)``: one evaluation run;
* ``perfmonitor.alerts.outbox.delivery.deliver(notification_id)``: one delivery attempt;
* ``perfmonitor.alerts.ack.acknowledge(alert_pk, user, expected_version=None)``;
* ``perfmonitor.alerts.preview.preview_rule(rule, start, end)``: what a rule would have done;
* ``perfmonitor.alerts.stats.alert_statistics(window)``: counts, MTTA, MTTR, noisy rules.

Timers read ``perfmonitor.alerts.clock``, which tests replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AckResult:
    acknowledged: bool  # True when this call acknowledged the alert
    alert: Any
    reason: str = ""


def acknowledge(alert: Any, user: Any = None, *, expected_version: int | None = None) -> AckResult:
    """Acknowledge an alert episode (instance or pk); never raises for a lost race."""
    from perfmonitor.alerts.ack import AckConflict
    from perfmonitor.alerts.ack import acknowledge as compare_and_set

    pk = getattr(alert, "pk", alert)
    try:
        return AckResult(True, compare_and_set(pk, user, expected_version=expected_version))
    except AckConflict as conflict:
        return AckResult(False, conflict.alert, conflict.reason)


def alert_statistics(window: Any) -> dict[str, Any]:
    """See :func:`perfmonitor.alerts.stats.alert_statistics`."""
    from perfmonitor.alerts.stats import alert_statistics as compute

    return compute(window)
