"""The query layer over MetricRollup: any series, any window, never raw rows.

A window is read from hourly rows where compaction has built them (hours
before the hourly watermark) and from minute rows elsewhere, so a 30-day
window costs ~720 rows per series and the last minutes are always fresh.

    >>> w = Window.last(timedelta(hours=24))
    >>> s = stats("request", name="/courses/<int:pk>/", window=w)[()]
    >>> s.count, s.p95, s.error_rate
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Max, Q
from django.utils import timezone

from perfmonitor.analytics.sketch import QuantileSketch
from perfmonitor.models import MetricRollup

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def last(cls, span: timedelta, now: datetime | None = None) -> Window:
        end = now or timezone.now()
        return cls(end - span, end)

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    @property
    def minutes(self) -> float:
        return self.span.total_seconds() / 60.0

    def previous(self) -> Window:
        """The equal window right before this one (for 'compared with yesterday')."""
        return Window(self.start - self.span, self.start)


@dataclass
class SeriesStats:
    count: int = 0
    sum: float = 0.0
    errors: int = 0
    min: float | None = None
    max: float | None = None
    sketch: QuantileSketch = field(default_factory=QuantileSketch)

    def add_row(self, count: int, total: float, errors: int, low: float | None,
                high: float | None, blob: bytes | memoryview | None) -> None:
        self.count += count
        self.sum += total
        self.errors += errors
        if low is not None and (self.min is None or low < self.min):
            self.min = low
        if high is not None and (self.max is None or high > self.max):
            self.max = high
        if blob:
            self.sketch.merge(QuantileSketch.from_bytes(blob))

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    @property
    def error_rate(self) -> float | None:
        """Errors as a share of count (0..1)."""
        return self.errors / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        value = self.sketch.quantile(q)
        if value is None:
            return None
        # The sketch is within 1 %; never report outside the exact observed range.
        if self.min is not None:
            value = max(value, self.min)
        if self.max is not None:
            value = min(value, self.max)
        return value

    @property
    def p50(self) -> float | None:
        return self.quantile(0.50)

    @property
    def p75(self) -> float | None:
        return self.quantile(0.75)

    @property
    def p95(self) -> float | None:
        return self.quantile(0.95)

    @property
    def p99(self) -> float | None:
        return self.quantile(0.99)

    def throughput_per_minute(self, window: Window) -> float:
        return self.count / window.minutes if window.minutes > 0 else 0.0

    def as_dict(self, window: Window | None = None) -> dict[str, float | int | None]:
        qs = self.sketch.quantiles((0.5, 0.75, 0.95, 0.99))
        clamp = self._clamp
        data: dict[str, float | int | None] = {
            "count": self.count, "errors": self.errors, "error_rate": self.error_rate,
            "mean": self.mean, "min": self.min, "max": self.max,
            "p50": clamp(qs[0.5]), "p75": clamp(qs[0.75]), "p95": clamp(qs[0.95]),
            "p99": clamp(qs[0.99]),
        }
        if window is not None:
            data["throughput_per_minute"] = self.throughput_per_minute(window)
        return data

    def _clamp(self, value: float | None) -> float | None:
        if value is None:
            return None
        if self.min is not None:
            value = max(value, self.min)
        if self.max is not None:
            value = min(value, self.max)
        return value


def hourly_watermark() -> datetime | None:
    """End of the last hour compaction has built hourly rows for."""
    latest = MetricRollup.objects.filter(resolution=MetricRollup.HOUR).aggregate(
        m=Max("bucket_start"))["m"]
    return latest + HOUR if latest else None


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floored = _floor_hour(moment)
    return floored if floored == moment else floored + HOUR


def resolution_filter(window: Window, watermark: datetime | None = None,
                      use_watermark: bool = True) -> Q:
    """Rows that cover the window exactly once: hourly inside, minute at the edges."""
    mark = hourly_watermark() if use_watermark and watermark is None else watermark
    minute = Q(resolution=MetricRollup.MINUTE)
    if mark is None:
        return minute & Q(bucket_start__gte=window.start, bucket_start__lt=window.end)
    hours_start = _ceil_hour(window.start)
    hours_end = min(_floor_hour(window.end), mark)
    if hours_end <= hours_start:
        return minute & Q(bucket_start__gte=window.start, bucket_start__lt=window.end)
    hourly = Q(resolution=MetricRollup.HOUR, bucket_start__gte=hours_start,
               bucket_start__lt=hours_end)
    edges = minute & (Q(bucket_start__gte=window.start, bucket_start__lt=hours_start)
                      | Q(bucket_start__gte=hours_end, bucket_start__lt=window.end))
    return hourly | edges


def _series_filter(kind: str, name: str | Sequence[str] | None,
                   dimension: str | Sequence[str] | None) -> Q:
    q = Q(kind=kind)
    if isinstance(name, str):
        q &= Q(name=name)
    elif name is not None:
        q &= Q(name__in=list(name))
    if isinstance(dimension, str):
        q &= Q(dimension=dimension)
    elif dimension is not None:
        q &= Q(dimension__in=list(dimension))
    return q


def rollup_rows(kind: str, *, window: Window, name: str | Sequence[str] | None = None,
                dimension: str | Sequence[str] | None = None,
                fields: Iterable[str] = ("name", "dimension", "bucket_start", "resolution",
                                         "count", "sum", "errors", "min", "max", "sketch"),
                ) -> Iterable[tuple]:
    return (MetricRollup.objects
            .filter(_series_filter(kind, name, dimension) & resolution_filter(window))
            .values_list(*fields)
            .iterator(chunk_size=2000))


def stats(kind: str, *, window: Window, name: str | Sequence[str] | None = None,
          dimension: str | Sequence[str] | None = None,
          group_by: Sequence[str] = ()) -> dict[tuple, SeriesStats]:
    """Merged statistics per group (group_by: any of "name", "dimension")."""
    positions = {"name": 0, "dimension": 1}
    index = [positions[g] for g in group_by]
    result: dict[tuple, SeriesStats] = {}
    for row in rollup_rows(kind, window=window, name=name, dimension=dimension):
        key = tuple(row[i] for i in index)
        entry = result.get(key)
        if entry is None:
            entry = result[key] = SeriesStats()
        entry.add_row(row[4], row[5], row[6], row[7], row[8], row[9])
    return result


def total(kind: str, *, window: Window, name: str | Sequence[str] | None = None,
          dimension: str | Sequence[str] | None = None) -> SeriesStats:
    """All matching series merged into one."""
    return stats(kind, window=window, name=name, dimension=dimension).get((), SeriesStats())


def trend(kind: str, *, window: Window, name: str | Sequence[str] | None = None,
          dimension: str | Sequence[str] | None = None,
          bucket: timedelta | None = None) -> list[tuple[datetime, SeriesStats]]:
    """Time-bucketed statistics: minute buckets up to 6 h, hourly beyond (or ``bucket``)."""
    step = bucket or (timedelta(minutes=1) if window.span <= timedelta(hours=6) else HOUR)
    seconds = step.total_seconds()
    origin = window.start.timestamp()
    buckets: dict[int, SeriesStats] = {}
    for row in rollup_rows(kind, window=window, name=name, dimension=dimension):
        slot = math.floor((row[2].timestamp() - origin) / seconds)
        entry = buckets.get(slot)
        if entry is None:
            entry = buckets[slot] = SeriesStats()
        entry.add_row(row[4], row[5], row[6], row[7], row[8], row[9])
    n_slots = max(1, math.ceil(window.span.total_seconds() / seconds))
    return [(window.start + step * i, buckets.get(i, SeriesStats())) for i in range(n_slots)]
