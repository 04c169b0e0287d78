"""Percentiles from rollups match numpy's exact values within the sketch's 1 %."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.test import override_settings

from perfmonitor.analytics.compaction import compact_rollups
from perfmonitor.analytics.query import Window, cover, read_marks, stats
from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.records import RequestRecord
from perfmonitor.models import MetricRollup

N = 100_000
NOW = (datetime.now(UTC) - timedelta(days=1)).replace(hour=16, minute=42, second=17, microsecond=0)
ROUTE = "/courses/<int:pk>/"


def request_record(duration_ms: float, ts: float) -> RequestRecord:
    return RequestRecord(method="GET", route=ROUTE, view="courses.detail", path="/courses/7/",
                         query_string="", status=200, ts=ts, duration_ms=duration_ms,
                         queries=[], overflow={})


@pytest.mark.django_db(transaction=True)
@override_settings(PERFMONITOR={"BACKGROUND_FLUSH": False, "SAMPLE_RATE": 0.0,
                                "BUFFER_SIZE": 50_000, "BATCH_SIZE": 10_000,
                                "SLOW_API_MS": 10**9})
def test_p50_p95_p99_from_minute_and_hour_rows_are_within_one_percent():
    rng = np.random.default_rng(20260310)
    durations = rng.lognormal(mean=np.log(120.0), sigma=0.9, size=N)
    # Spread over the last 3 h 40 min, so the window below holds whole hours
    # (hour rows after compaction) and ragged edges (minute rows).
    first = NOW - timedelta(hours=3, minutes=40)
    offsets = rng.uniform(0, (NOW - first).total_seconds() - 1, size=N)
    stamps = first.timestamp() + offsets
    for i, (ms, ts) in enumerate(zip(durations, stamps, strict=True)):
        buffer_module.push(request_record(float(ms), float(ts)))
        if i % 10_000 == 9_999:
            buffer_module.flush_now()
    buffer_module.flush_now()
    assert buffer_module.buffer.dropped == 0

    compact_rollups(now=NOW)

    # Minute-aligned, so "inside" below is exactly what the rows hold.
    window = Window(first.replace(second=0) + timedelta(minutes=17),
                    NOW.replace(second=0) - timedelta(minutes=2))
    segments = cover(window, read_marks())
    # Minute rows at the edges, 10-minute and hour rows in between.
    assert {res for res, _a, _b in segments} >= {MetricRollup.MINUTE, MetricRollup.HOUR}
    assert MetricRollup.objects.filter(kind="request", resolution=3600).exists()

    inside = durations[(stamps >= window.start.timestamp()) & (stamps < window.end.timestamp())]
    s = stats("request", window=window, name=ROUTE)[()]
    assert s.count == len(inside)
    for q, got in ((50, s.p50), (95, s.p95), (99, s.p99)):
        exact = float(np.percentile(inside, q))
        error = abs(got - exact) / exact
        print(f"p{q}: rollups {got:.3f} ms, numpy {exact:.3f} ms, relative error {error:.4%}")
        assert error <= 0.01, (q, got, exact)
