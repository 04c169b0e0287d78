"""The monitor's own health, across processes (from MonitorHealth rows)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from perfmonitor.capture.buffer import buffer
from perfmonitor.models import MonitorHealth

STALE_AFTER = timedelta(minutes=2)


def health_report() -> dict[str, Any]:
    now = timezone.now()
    processes = []
    for row in MonitorHealth.objects.order_by("-updated_at")[:200]:
        age = (now - row.last_flush_at).total_seconds() if row.last_flush_at else None
        processes.append({
            "process": row.process, "updated_at": row.updated_at, "captured": row.captured,
            "flushed": row.flushed, "dropped": row.dropped, "flush_errors": row.flush_errors,
            "internal_errors": row.internal_errors, "buffer_size": row.buffer_size,
            "last_flush_age_seconds": age, "last_error": row.last_error,
            "alive": now - row.updated_at < STALE_AFTER,
        })
    alive = [p for p in processes if p["alive"]]
    return {
        "this_process": buffer.stats(),
        "processes": processes,
        "totals": {k: sum(p[k] for p in alive) for k in
                   ("captured", "flushed", "dropped", "flush_errors", "internal_errors")},
    }
