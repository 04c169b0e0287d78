"""Alert statistics over a window: what fired, how fast people reacted, which rules are noisy.

Counted are episodes that *fired* inside the window (pending blips that never
fired are not alerts). Definitions:

* MTTA: mean time from firing to acknowledgement, over acknowledged episodes;
* MTTR: mean time from firing to resolution, over resolved episodes;
* noisiest rules: most fired episodes (ties: most notifications);
* flapping rules: at least ``FLAP_MIN_EPISODES`` fired episodes in the window,
  most of them shorter than ``FLAP_MAX_SECONDS`` (the rule goes on and off
  instead of describing one incident; raise ``for`` or add hysteresis).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from django.db.models import Count

from perfmonitor.alerts import clock
from perfmonitor.analytics.query import Window, parse_span
from perfmonitor.models import AlertNotification, PerformanceAlert
from perfmonitor.models.alerts import OPEN_STATES

FLAP_MIN_EPISODES = 4
FLAP_MAX_SECONDS = 600
TOP = 5


def as_window(window: Window | timedelta | str) -> Window:
    if isinstance(window, Window):
        return window
    if isinstance(window, str):
        window = parse_span(window)
    return Window.last(window)


def _mean_seconds(spans: list[timedelta]) -> float | None:
    return round(sum(s.total_seconds() for s in spans) / len(spans), 1) if spans else None


def _median_seconds(spans: list[timedelta]) -> float | None:
    return round(statistics.median(s.total_seconds() for s in spans), 1) if spans else None


def alert_statistics(window: Window | timedelta | str) -> dict[str, Any]:
    """JSON-ready statistics of the alerts that fired in ``window``."""
    window = as_window(window)
    rows = list(PerformanceAlert.objects.filter(
        fired_at__gte=window.start, fired_at__lt=window.end).values(
        "pk", "rule_id", "rule__name", "alert_type", "severity", "state", "fired_at",
        "acknowledged_at", "resolved_at"))
    notes = dict(AlertNotification.objects.filter(
        alert__fired_at__gte=window.start, alert__fired_at__lt=window.end)
        .values_list("alert_id").annotate(n=Count("pk")))
    by_rule: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_rule[row["rule_id"] or row["alert_type"]].append(row)
    rules = [_rule_summary(key, items, sum(notes.get(r["pk"], 0) for r in items))
             for key, items in by_rule.items()]
    rules.sort(key=lambda r: (-r["fired"], -r["notifications"], r["name"]))
    acked = [r["acknowledged_at"] - r["fired_at"] for r in rows if r["acknowledged_at"]]
    resolved = [r["resolved_at"] - r["fired_at"] for r in rows if r["resolved_at"]]
    return {
        "window": window.as_dict(),
        "fired": len(rows),
        "by_severity": dict(Counter(r["severity"] for r in rows)),
        "by_rule": rules,
        "acknowledged": len(acked),
        "resolved": len(resolved),
        "open": sum(1 for r in rows if r["state"] in OPEN_STATES),
        "mtta_seconds": _mean_seconds(acked),
        "mttr_seconds": _mean_seconds(resolved),
        "median_tta_seconds": _median_seconds(acked),
        "median_ttr_seconds": _median_seconds(resolved),
        "noisiest": rules[:TOP],
        "flapping": [r for r in rules if r["flapping"]],
        "notifications": _notification_counts(window),
    }


def _rule_summary(key: Any, items: list[dict[str, Any]], notifications: int) -> dict[str, Any]:
    now = clock.now()
    durations = [(r["resolved_at"] or now) - r["fired_at"] for r in items]
    short = sum(1 for d in durations if d.total_seconds() < FLAP_MAX_SECONDS)
    acked = [r["acknowledged_at"] - r["fired_at"] for r in items if r["acknowledged_at"]]
    resolved = [r["resolved_at"] - r["fired_at"] for r in items if r["resolved_at"]]
    return {
        "rule": str(key), "name": items[0]["rule__name"] or items[0]["alert_type"],
        "fired": len(items),
        "by_severity": dict(Counter(r["severity"] for r in items)),
        "notifications": notifications,
        "mtta_seconds": _mean_seconds(acked), "mttr_seconds": _mean_seconds(resolved),
        "median_duration_seconds": _median_seconds(durations),
        "flapping": len(items) >= FLAP_MIN_EPISODES and short * 2 > len(items),
    }


def _notification_counts(window: Window) -> dict[str, int]:
    counts = dict(AlertNotification.objects.filter(created_at__gte=window.start,
                                                   created_at__lt=window.end)
                  .values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    return {status: counts.get(status, 0)
            for status in ("pending", "sending", "delivered", "failed", "cancelled")}
