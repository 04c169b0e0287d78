"""The query layer over MetricRollup: any series, any window, never raw rows.

Rollups come at three resolutions: minute rows (written by every flush,
merged per minute by compaction), hour rows and day rows (built by
compaction, see :mod:`perfmonitor.analytics.compaction`). A window is covered
exactly once by the coarsest rows that fit inside it:

* whole days before the day watermark from day rows,
* whole hours before the hour watermark from hour rows,
* everything else (the window's ragged edges, the hour still open) from
  minute rows,
* plus *late* minute rows: rows that arrived after their hour was folded and
  that compaction has not folded yet. They are uncompacted minute rows with an
  id above the compaction cursor, so finding them is a short primary-key range
  scan; the moment compaction folds one into its hour (and day) row it marks it
  compacted in the same transaction, so a datum is never read twice or missed.

The rows of one call come from one SQL statement. Watermarks and late-row
ids are read before it (once per dashboard render with :func:`pinned_marks`);
stale ones are harmless: a region a stale mark calls open is read from minute
rows, which stay complete after compaction, and a late row is counted only if
it is still uncompacted in that same statement.

Compaction also keeps aggregate series at hour and day resolution: name
``*`` / dimension ``*`` is the whole kind, dimension ``*`` a name across its
dimensions (for the kinds in :data:`NAME_TOTAL_KINDS`). ``total()`` and
``trend()`` over a whole kind read those instead of every series, which is what
keeps a 30-day overview in tens of milliseconds.

    >>> w = Window.last(timedelta(hours=24))
    >>> s = stats("request", name="/courses/<int:pk>/", window=w)[()]
    >>> s.count, s.p95, s.error_rate
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.db.models import Q
from django.utils import timezone

from perfmonitor.analytics.rows_sql import epoch_column, latest_buckets, select_rows
from perfmonitor.conf import settings
from perfmonitor.models import MetricRollup

# The sketches (numpy) are loaded where quantiles are read, not on import: the admin
# and the URLs import this module in every web process, most of which never read one.
if TYPE_CHECKING:
    from perfmonitor.analytics.sketch import QuantileSketch, SketchView

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
DAY_RESOLUTION = 86400
# Rollup levels in seconds, finest first. Each bucket of a level is a whole
# number of buckets of the level below (all aligned to the Unix epoch, UTC), so
# a window is covered by a few coarse rows and ragged edges of finer ones.
LEVELS = (60, 600, 3600, 21600, 86400, 604800)
RESOLUTION_STEP = {res: timedelta(seconds=res) for res in LEVELS}

ALL = "*"  # name / dimension of aggregate series built by compaction
NAME_TOTAL_KINDS = frozenset({"request", "query", "vital", "api", "vital:mobile",
                              "vital:tablet", "vital:desktop"})
STATE_KIND = "_state"  # compaction's own bookkeeping row (never a metric)
STATE_NAME = "compaction"
MAX_LATE_ROWS = 50_000  # beyond it a reader waits for compaction to fold them

MAX_WINDOW = timedelta(days=400)
MIN_WINDOW = timedelta(minutes=1)
_WINDOW_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.I)
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class WindowError(ValueError):
    """A window that cannot be read; the message says why."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def last(cls, span: timedelta, now: datetime | None = None) -> Window:
        end = now or timezone.now()
        return cls(end - span, end)

    @classmethod
    def parse(cls, text: str, now: datetime | None = None) -> Window:
        """``"15m"``, ``"6h"``, ``"7d"``, ``"2w"``: the span ending now."""
        return cls.last(parse_span(text), now=now)

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    @property
    def minutes(self) -> float:
        return self.span.total_seconds() / 60.0

    def previous(self) -> Window:
        """The equal window right before this one (for 'compared with yesterday')."""
        return Window(self.start - self.span, self.start)

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def parse_span(text: str) -> timedelta:
    match = _WINDOW_TEXT.match(str(text or ""))
    if not match:
        raise WindowError(f"window must look like 15m, 6h, 7d or 2w; got {str(text)[:20]!r}")
    span = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])
    if span < MIN_WINDOW or span > MAX_WINDOW:
        raise WindowError(f"window must be between 1 minute and 400 days; got {text!r}")
    return span


class SeriesStats:
    """Merged statistics of one or more series over a window.

    Sketches are kept serialized and merged on first use: a caller that only
    needs counts (ranking by total time, error rates) never pays for them.
    ``sketch`` is a read-only :class:`SketchView` (quantiles, count_at_most,
    excess_over), the merge of every row added.
    """

    __slots__ = ("count", "sum", "errors", "min", "max", "_blobs", "_sketch")

    def __init__(self, count: int = 0, sum: float = 0.0, errors: int = 0,  # noqa: A002
                 min: float | None = None, max: float | None = None,  # noqa: A002
                 sketch: QuantileSketch | None = None) -> None:
        self.count = count
        self.sum = sum
        self.errors = errors
        self.min = min
        self.max = max
        self._blobs: list[bytes] = [sketch.to_bytes()] if sketch is not None else []
        self._sketch: SketchView | None = None

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
            self._blobs.append(blob if isinstance(blob, bytes) else bytes(blob))
            self._sketch = None

    def merge(self, other: SeriesStats) -> None:
        self.count += other.count
        self.sum += other.sum
        self.errors += other.errors
        if other.min is not None and (self.min is None or other.min < self.min):
            self.min = other.min
        if other.max is not None and (self.max is None or other.max > self.max):
            self.max = other.max
        if other._blobs:
            self._blobs.extend(other._blobs)
            self._sketch = None

    @property
    def sketch(self) -> SketchView:
        if self._sketch is None:
            import numpy as np

            from perfmonitor.analytics.sketch import SketchView

            self._sketch = SketchView.from_blobs(self._blobs) if self._blobs else \
                SketchView(np.empty(0, np.int64), np.empty(0), 0.0)
        return self._sketch

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    @property
    def error_rate(self) -> float | None:
        """Errors as a share of count (0..1)."""
        return self.errors / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        return self._clamp(self.sketch.quantile(q))

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

    def share_at_most(self, threshold: float) -> float | None:
        """Share of values <= threshold (bucket resolution: within 1 % of threshold)."""
        if not self.count:
            return None
        sketch = self.sketch
        return sketch.count_at_most(threshold) / sketch.count if sketch.count else None

    def throughput_per_minute(self, window: Window) -> float:
        return self.count / window.minutes if window.minutes > 0 else 0.0

    def as_dict(self, window: Window | None = None) -> dict[str, float | int | None]:
        qs = self.sketch.quantiles((0.5, 0.75, 0.95, 0.99)) if self.count else {}
        clamp = self._clamp
        data: dict[str, float | int | None] = {
            "count": self.count, "errors": self.errors, "error_rate": self.error_rate,
            "mean": self.mean, "min": self.min, "max": self.max,
            "p50": clamp(qs.get(0.5)), "p75": clamp(qs.get(0.75)), "p95": clamp(qs.get(0.95)),
            "p99": clamp(qs.get(0.99)),
        }
        if window is not None:
            data["throughput_per_minute"] = self.throughput_per_minute(window)
        return data

    def _clamp(self, value: float | None) -> float | None:
        # The sketch is within 1 %; never report outside the exact observed range.
        if value is None:
            return None
        if self.min is not None:
            value = max(value, self.min)
        if self.max is not None:
            value = min(value, self.max)
        return value

    def __repr__(self) -> str:
        return f"<SeriesStats n={self.count} errors={self.errors} sum={self.sum:g}>"


def prepare_sketches(items: Iterable[SeriesStats]) -> None:
    """Merge the sketches of many SeriesStats in one vectorized pass.

    Call it before reading quantiles of many groups (trend buckets, pages,
    routes); reading them one by one gives the same numbers, slower.
    """
    pending = [s for s in items if s._sketch is None and s._blobs]
    if not pending:
        return
    from perfmonitor.analytics.sketch import grouped_views

    groups = [i for i, s in enumerate(pending) for _ in s._blobs]
    blobs = [blob for s in pending for blob in s._blobs]
    for s, view in zip(pending, grouped_views(groups, blobs, len(pending)), strict=True):
        s._sketch = view


# -- watermarks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Marks:
    """How far compaction got: per level above the minute, the end of the last
    bucket built (rows before it are folded); ``cursor`` is the id below which
    every late row has been folded; ``late`` the ids of late minute rows (above
    the cursor, in built 10-minute blocks) not folded yet."""

    levels: dict[int, datetime | None]
    cursor: int = 0
    late: tuple[int, ...] = ()

    @property
    def hour(self) -> datetime | None:
        return self.levels.get(MetricRollup.HOUR)

    @property
    def day(self) -> datetime | None:
        return self.levels.get(DAY_RESOLUTION)


_pinned: ContextVar[Marks | None] = ContextVar("perfmonitor_marks", default=None)


def read_marks() -> Marks:
    pinned = _pinned.get()
    if pinned is not None:
        return pinned
    latest, cursor = latest_buckets(LEVELS[1:], STATE_KIND, STATE_NAME)
    levels: dict[int, datetime | None] = {}
    for res in LEVELS[1:]:
        value = latest.get(res)
        levels[res] = _as_datetime(value) + RESOLUTION_STEP[res] if value is not None else None
    first_mark = levels[LEVELS[1]]
    late: tuple[int, ...] = ()
    if first_mark is not None:
        # A primary-key range scan over rows inserted since the cursor: a few
        # hundred rows, usually none of them late.
        late = tuple(MetricRollup.objects.filter(
            id__gt=cursor, resolution=MetricRollup.MINUTE, compacted=False,
            bucket_start__lt=first_mark).values_list("id", flat=True)[:MAX_LATE_ROWS])
    return Marks(levels, cursor, late)


@contextlib.contextmanager
def pinned_marks() -> Iterator[Marks]:
    """Read the watermarks once for a block of queries (a dashboard render).

    Stale marks are safe: a region a stale mark calls open is read from minute
    rows, which stay complete after compaction.
    """
    marks = read_marks()
    token = _pinned.set(marks)
    try:
        yield marks
    finally:
        _pinned.reset(token)


def hourly_watermark() -> datetime | None:
    """End of the last hour compaction has built hourly rows for."""
    return read_marks().hour


# -- covering a window -----------------------------------------------------------------------


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """Start of the epoch-aligned bucket of ``step`` that holds ``moment``."""
    epoch = _EPOCH if moment.tzinfo is None else _EPOCH.replace(tzinfo=moment.tzinfo)
    return moment - (moment - epoch) % step


def ceil_to(moment: datetime, step: timedelta) -> datetime:
    floored = floor_to(moment, step)
    return floored if floored == moment else floored + step


_EPOCH = datetime(1970, 1, 1)


Segment = tuple[int, datetime, datetime]


def cover(window: Window, marks: Marks, finest: int = LEVELS[-1]) -> list[Segment]:
    """Segments (resolution, start, end) that cover the window exactly once.

    ``finest`` caps the coarsest resolution used (a trend with hourly buckets
    cannot use day rows).
    """
    levels: list[tuple[int, datetime]] = [
        (res, mark) for res in reversed(LEVELS[1:])
        if res <= finest and (mark := marks.levels.get(res)) is not None]
    start = _snap_beyond_retention(window.start)
    return [seg for seg in _cover(start, window.end, levels) if seg[2] > seg[1]]


def _cover(lo: datetime, hi: datetime, levels: list[tuple[int, datetime]]) -> list[Segment]:
    if hi <= lo:
        return []
    if not levels:
        return [(MetricRollup.MINUTE, lo, hi)]
    (res, mark), rest = levels[0], levels[1:]
    step = RESOLUTION_STEP[res]
    a = ceil_to(lo, step)
    b = min(floor_to(hi, step), mark)
    if b <= a:
        return _cover(lo, hi, rest)
    return [*_cover(lo, a, rest), (res, a, b), *_cover(b, hi, rest)]


def _snap_beyond_retention(start: datetime) -> datetime:
    # Minute rows older than their retention are gone: read the window's first
    # partial hour whole from its hour row rather than lose it.
    horizon = timezone.now() - timedelta(days=settings.MINUTE_ROLLUP_RETENTION_DAYS)
    return floor_to(start, HOUR) if start < horizon else start


def resolution_filter(window: Window, watermark: datetime | None = None,
                      use_watermark: bool = True) -> Q:
    """Rows of one series set that cover the window exactly once (see module doc)."""
    marks = read_marks() if use_watermark else Marks({})
    if watermark is not None:
        marks = Marks({res: (mark if mark is not None and mark <= watermark else None)
                       for res, mark in marks.levels.items()}, marks.cursor, marks.late)
    return _rows_filter(cover(window, marks), marks, Q(), Q())


def _range(res: int, a: datetime, b: datetime) -> Q:
    return Q(resolution=res, bucket_start__gte=a, bucket_start__lt=b)


def _rows_filter(segments: list[Segment], marks: Marks, coarse_series: Q, fine_series: Q) -> Q:
    coarse = [s for s in segments if s[0] != MetricRollup.MINUTE]
    fine = [s for s in segments if s[0] == MetricRollup.MINUTE]
    q = Q(pk__in=[])
    for res, a, b in coarse:
        q |= coarse_series & _range(res, a, b)
    for res, a, b in fine:
        q |= fine_series & _range(res, a, b)
    if coarse and marks.late:
        # Late rows not folded yet count where their coarse row would have
        # counted them; ``compacted=False`` is re-checked in this same statement,
        # so a row folded since the marks were read counts once, in its hour row.
        late_span = Q(pk__in=[])
        for _res, a, b in coarse:
            late_span |= Q(bucket_start__gte=a, bucket_start__lt=b)
        q |= (fine_series & Q(id__in=marks.late, compacted=False) & late_span)
    return q


# -- series selection ------------------------------------------------------------------------


Names = str | Sequence[str] | None


def _match(field: str, value: Names) -> Q:
    if value is None:
        return Q()
    if isinstance(value, str):
        return Q(**{field: value})
    return Q(**{f"{field}__in": list(value)})


def _series_filters(kind: str, name: Names, dimension: Names,
                    group_by: Sequence[str]) -> tuple[Q, Q]:
    """(filter for hour/day rows, filter for minute rows) of the asked series.

    Hour and day rows of a whole kind (or a name across its dimensions) come
    from compaction's aggregate series when nothing finer is asked for.
    """
    raw = Q(kind=kind) & ~Q(name=ALL) & ~Q(dimension=ALL) & _match("name", name) \
        & _match("dimension", dimension)
    if dimension is None and "dimension" not in group_by:
        if name is None and "name" not in group_by:
            return Q(kind=kind, name=ALL, dimension=ALL), raw
        if kind in NAME_TOTAL_KINDS:
            return Q(kind=kind, dimension=ALL) & ~Q(name=ALL) & _match("name", name), raw
    return raw, raw


FIELDS = ("name", "dimension", "bucket_start", "resolution", "count", "sum", "errors", "min",
          "max", "sketch")


def rollup_rows(kind: str, *, window: Window, name: Names = None, dimension: Names = None,
                fields: Iterable[str] = FIELDS, group_by: Sequence[str] = ("name", "dimension"),
                finest: int = LEVELS[-1]) -> list[tuple]:
    """Rollup rows covering the window exactly once for the selected series.

    One statement, fetched whole (a 30-day window is a few thousand rows per
    series set): a server-side cursor would cost a round trip per chunk.
    """
    marks = read_marks()
    return select_rows(list(fields), kind=kind, name=name, dimension=dimension,
                       group_by=group_by, segments=cover(window, marks, finest),
                       late=marks.late)


TREND_FIELDS = ("bucket_start", "count", "sum", "errors", "min", "max", "sketch")
STATS_FIELDS = ("name", "dimension", "count", "sum", "errors", "min", "max", "sketch")


def stats(kind: str, *, window: Window, name: Names = None, dimension: Names = None,
          group_by: Sequence[str] = ()) -> dict[tuple, SeriesStats]:
    """Merged statistics per group (group_by: any of "name", "dimension")."""
    positions = {"name": 0, "dimension": 1}
    index = [positions[g] for g in group_by]
    result: dict[tuple, SeriesStats] = {}
    for row in rollup_rows(kind, window=window, name=name, dimension=dimension,
                           group_by=group_by, fields=STATS_FIELDS):
        key = tuple([row[i] for i in index])
        entry = result.get(key)
        if entry is None:
            entry = result[key] = SeriesStats()
        entry.add_row(row[2], row[3], row[4], row[5], row[6], row[7])
    return result


def total(kind: str, *, window: Window, name: Names = None,
          dimension: Names = None) -> SeriesStats:
    """All matching series merged into one."""
    return stats(kind, window=window, name=name, dimension=dimension).get((), SeriesStats())


def trend(kind: str, *, window: Window, name: Names = None, dimension: Names = None,
          bucket: timedelta | None = None) -> list[tuple[datetime, SeriesStats]]:
    """Time-bucketed statistics: minute buckets up to 6 h, hourly beyond (or ``bucket``).

    Buckets are aligned to the window start. Rows coarser than the bucket are
    never used, so each bucket holds exactly its own data.
    """
    step = bucket or default_bucket(window)
    seconds = step.total_seconds()
    finest = _finest_for(seconds)
    origin = window.start.timestamp()
    buckets: dict[int, SeriesStats] = {}
    for row in _epoch_rows(kind, window=window, name=name, dimension=dimension, finest=finest):
        slot = max(0, math.floor((float(row[0]) - origin) / seconds))
        entry = buckets.get(slot)
        if entry is None:
            entry = buckets[slot] = SeriesStats()
        entry.add_row(row[1], row[2], row[3], row[4], row[5], row[6])
    n_slots = max(1, math.ceil(window.span.total_seconds() / seconds))
    prepare_sketches(buckets.values())
    return [(window.start + step * i, buckets.get(i, SeriesStats())) for i in range(n_slots)]


def trend_points(kind: str, *, window: Window, qs: tuple[float, ...] = (0.5, 0.95),
                 name: Names = None, dimension: Names = None,
                 bucket: timedelta | None = None) -> list[dict[str, Any]]:
    """Like :func:`trend`, as plain points with quantiles, computed for all buckets at once.

    Each point: ``t`` (bucket start), ``count``, ``sum``, ``errors``, ``min``,
    ``max``, ``mean``, ``error_rate``, ``throughput_per_minute`` and one key per
    quantile (``p50``, ``p95``... named by ``100 * q``).
    """
    step = bucket or default_bucket(window)
    seconds = step.total_seconds()
    finest = _finest_for(seconds)
    data = _epoch_rows(kind, window=window, name=name, dimension=dimension, finest=finest)
    origin = window.start.timestamp()
    n_slots = max(1, math.ceil(window.span.total_seconds() / seconds))
    count = [0] * n_slots
    total_sum = [0.0] * n_slots
    errors = [0] * n_slots
    low: list[float | None] = [None] * n_slots
    high: list[float | None] = [None] * n_slots
    groups: list[int] = []
    blobs: list[bytes] = []
    for epoch, n, s, e, lo, hi, blob in data:
        slot = min(n_slots - 1, max(0, int((float(epoch) - origin) // seconds)))
        count[slot] += n
        total_sum[slot] += s
        errors[slot] += e
        if lo is not None and (low[slot] is None or lo < low[slot]):
            low[slot] = lo
        if hi is not None and (high[slot] is None or hi > high[slot]):
            high[slot] = hi
        if blob:
            groups.append(slot)
            blobs.append(blob if isinstance(blob, bytes) else bytes(blob))
    from perfmonitor.analytics.sketch import grouped_quantiles

    quantiles = grouped_quantiles(groups, blobs, n_slots, qs)
    minutes = seconds / 60
    points = []
    for i in range(n_slots):
        n = count[i]
        point: dict[str, Any] = {
            "t": (window.start + step * i).isoformat(), "count": n, "sum": total_sum[i],
            "errors": errors[i], "min": low[i], "max": high[i],
            "mean": total_sum[i] / n if n else None, "error_rate": errors[i] / n if n else None,
            "throughput_per_minute": n / minutes}
        for qv in qs:
            value = quantiles[qv][i] if n else None
            lo, hi = low[i], high[i]
            if value is not None and lo is not None and value < lo:
                value = lo  # the sketch is within 1 %: never outside the observed range
            if value is not None and hi is not None and value > hi:
                value = hi
            point[f"p{100 * qv:g}"] = value
        points.append(point)
    return points


def _epoch_rows(kind: str, *, window: Window, name: Names, dimension: Names,
                finest: int) -> list[tuple]:
    """(bucket start as Unix seconds, count, sum, errors, min, max, sketch) rows."""
    epoch = epoch_column()
    if epoch is not None:
        return rollup_rows(kind, window=window, name=name, dimension=dimension, group_by=(),
                           finest=finest, fields=(epoch, *TREND_FIELDS[1:]))
    rows = rollup_rows(kind, window=window, name=name, dimension=dimension, group_by=(),
                       finest=finest, fields=TREND_FIELDS)
    return [(_as_datetime(r[0]).timestamp(), *r[1:]) for r in rows]


def _as_datetime(value: Any) -> datetime:
    """A bucket_start from raw SQL (SQLite gives text) as the ORM would give it."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if parsed.tzinfo is None and django_settings.USE_TZ:
        return parsed.replace(tzinfo=UTC)
    return parsed


def _finest_for(bucket_seconds: float) -> int:
    """The coarsest level whose rows fit whole into buckets of this size."""
    return max(res for res in LEVELS if res <= bucket_seconds and bucket_seconds % res == 0) \
        if bucket_seconds >= 60 else MetricRollup.MINUTE


def default_bucket(window: Window) -> timedelta:
    return MINUTE if window.span <= timedelta(hours=6) else HOUR


# -- comparisons and rankings ----------------------------------------------------------------


def change(current: float | None, previous: float | None) -> float | None:
    """Relative change (0.25 = +25 %); None when there is nothing to compare with."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous)


@dataclass
class Comparison:
    current: SeriesStats
    previous: SeriesStats
    window: Window

    def metric(self, key: str) -> dict[str, float | None]:
        cur = _metric(self.current, key, self.window)
        prev = _metric(self.previous, key, self.window.previous())
        return {"current": cur, "previous": prev, "change": change(cur, prev)}

    def as_dict(self, keys: Sequence[str] = ("count", "throughput_per_minute", "mean", "p50",
                                             "p95", "p99", "error_rate")) -> dict[str, dict]:
        return {key: self.metric(key) for key in keys}


def _metric(s: SeriesStats, key: str, window: Window) -> float | None:
    if key == "throughput_per_minute":
        return s.throughput_per_minute(window)
    if key == "count":
        return float(s.count)
    return getattr(s, key)


def compare(kind: str, *, window: Window, name: Names = None,
            dimension: Names = None) -> Comparison:
    """This window against the equal window before it."""
    return Comparison(total(kind, window=window, name=name, dimension=dimension),
                      total(kind, window=window.previous(), name=name, dimension=dimension),
                      window)


RANKINGS = ("total_time", "p95", "error_rate", "count", "mean")


@dataclass
class Ranked:
    name: str
    dimension: str
    stats: SeriesStats

    def as_dict(self, window: Window | None = None) -> dict:
        data = {"name": self.name, "dimension": self.dimension, "total_time": self.stats.sum}
        data.update(self.stats.as_dict(window))
        return data


def top(kind: str, *, window: Window, by: str = "total_time", limit: int = 10,
        name: Names = None, dimension: Names = None,
        group_by: Sequence[str] = ("name", "dimension"),
        min_count: int = 1) -> list[Ranked]:
    """Top N series by total time, p95, error rate, count or mean."""
    if by not in RANKINGS:
        raise ValueError(f"by must be one of {', '.join(RANKINGS)}; got {by!r}")
    groups = stats(kind, window=window, name=name, dimension=dimension, group_by=group_by)
    items = [Ranked(key[0] if key else "", key[1] if len(key) > 1 else "", s)
             for key, s in groups.items() if s.count >= min_count]

    def sort_key(item: Ranked) -> float:
        s = item.stats
        value = {"total_time": s.sum, "count": s.count, "mean": s.mean,
                 "error_rate": s.error_rate}.get(by) if by != "p95" else s.p95
        return -(value or 0.0)

    items.sort(key=lambda item: (sort_key(item), item.name, item.dimension))
    return items[:limit]
