"""Glue between the dashboard's data and ``perfmonitor.analytics.svg``, the one chart module.

Times are shown in the admin's time zone; a bucket without data is left out of
its line (sparse traffic still reads as a trend, and every point keeps its
``<title>`` tooltip); a threshold or budget is drawn as its own flat series
named after it, so the legend says what it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from perfmonitor.analytics import svg

Point = tuple[datetime, float | None]
HISTOGRAM_BINS = 24
THRESHOLD_COLOR = svg.BAD


def _local(moment: datetime) -> datetime:
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment


def timeline(series: Sequence[tuple[str, Sequence[Point]]], *, unit: str, title: str,
             threshold: tuple[str, float] | None = None) -> SafeString:
    lines = [svg.Series(name, [(_local(t), v) for t, v in points if v is not None])
             for name, points in series]
    # The x axis is labelled from the first series: put the one with the most points first.
    lines = sorted((line for line in lines if line.points), key=lambda line: -len(line.points)) \
        or lines[:1]
    if threshold is not None and any(line.points for line in lines):
        times = [t for line in lines for t, _ in line.points]
        label, value = threshold
        lines.append(svg.Series(label, [(min(times), value), (max(times), value)],
                                color=THRESHOLD_COLOR))
    return mark_safe(svg.line_chart(lines, title=title, unit=unit))


def bars(items: Sequence[tuple[str, float]], *, unit: str, title: str,
         limit: float | None = None, width: int = 640, bar_height: int = 18) -> SafeString:
    return mark_safe(svg.bar_chart(items, title=title, unit=unit, limit=limit, width=width,
                                   bar_height=bar_height))


def gauge(value: float | None, *, label: str) -> SafeString:
    return mark_safe(svg.gauge(value, label=label))


def histogram(sketch: Any, *, unit: str, title: str) -> SafeString | None:
    """Counts over log-spaced ranges, read from the merged sketch's buckets (1 % wide)."""
    bins = sketch.bins
    if sketch.count <= 0 or not bins:
        return None
    # The sketch's own key -> value mapping (ddsketch's logarithmic mapping at its accuracy).
    from perfmonitor.analytics.sketch import RELATIVE_ACCURACY, LogarithmicMapping  # numpy

    mapping = LogarithmicMapping(RELATIVE_ACCURACY)
    values = {key: mapping.value(key) for key in bins}
    low, high = min(values.values()), max(values.values())
    lo = math.log10(max(low, 1e-3))
    hi = math.log10(max(high, low * 1.0001, 1e-3))
    width = (hi - lo) / HISTOGRAM_BINS or 1.0
    counts = [0.0] * HISTOGRAM_BINS
    for key, weight in bins.items():
        slot = int((math.log10(max(values[key], 1e-3)) - lo) / width)
        counts[min(HISTOGRAM_BINS - 1, max(0, slot))] += weight
    counts[0] += sketch.zero_count
    items = []
    for i, n in enumerate(counts):
        start, end = 10 ** (lo + i * width), 10 ** (lo + (i + 1) * width)
        items.append((f"{svg._fmt(start, unit)} – {svg._fmt(end, unit)}", n))
    return bars(items, unit="", title=title, bar_height=11)
