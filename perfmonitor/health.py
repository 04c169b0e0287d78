"""The monitor's own health, across processes (from MonitorHealth rows).

Every process's flusher upserts its row (captured, flushed, dropped, flush
errors, buffer size, last flush) every few seconds; a row not updated for
STALE_AFTER belongs to a process that stopped (or cannot reach the database).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from perfmonitor.capture.buffer import buffer
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.models import MonitorHealth

STALE_AFTER = timedelta(minutes=2)
MAX_PROCESSES = 200
COUNTERS = ("captured", "flushed", "dropped", "flush_errors", "internal_errors")


def process_health(row: MonitorHealth, now: Any = None) -> dict[str, Any]:
    now = now or timezone.now()
    age = (now - row.last_flush_at).total_seconds() if row.last_flush_at else None
    return {
        "process": row.process, "started_at": row.started_at, "updated_at": row.updated_at,
        "captured": row.captured, "flushed": row.flushed, "dropped": row.dropped,
        "flush_errors": row.flush_errors, "internal_errors": row.internal_errors,
        "buffer_size": row.buffer_size, "last_flush_at": row.last_flush_at,
        "last_flush_age_seconds": age, "last_error": row.last_error,
        "alive": now - row.updated_at < STALE_AFTER,
    }


def health_report() -> dict[str, Any]:
    now = timezone.now()
    with capture_suppressed():
        rows = list(MonitorHealth.objects.order_by("-updated_at")[:MAX_PROCESSES])
    processes = [process_health(row, now) for row in rows]
    alive = [p for p in processes if p["alive"]]
    return {
        "this_process": buffer.stats(),
        "processes": processes,
        "totals": {k: sum(p[k] for p in alive) for k in COUNTERS},
        "live_processes": len(alive),
    }
