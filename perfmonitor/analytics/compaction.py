"""Compaction: partial minute rows -> one row per minute -> coarser levels.

Levels (:data:`perfmonitor.analytics.query.LEVELS`): minute, 10 minutes, hour,
6 hours, day, week. Every flush appends partial minute rows. A compaction run,
under a lock, walks up the levels:

1. merges the partial rows of each closed minute into one row;
2. for each level, folds the rows of the level below into its closed buckets
   (one row per series, plus the aggregate series ``*`` built at the first
   level, see :mod:`perfmonitor.analytics.query`) and marks them ``compacted``;
3. folds late minute rows (rows that arrived after their 10-minute block was
   folded: a flusher that retried through a database outage) into every level
   already built above them.

A row's ``compacted`` flag says "my data is in the row one level up". Each
step changes the flag and the coarser row in one transaction, so a datum is
always in exactly one place a reader counts, whatever runs concurrently.

Late rows are found by id, not time: the state row keeps a cursor below which
every row has been examined, so a run looks only at rows inserted since. The
cursor trails the newest id by ``CURSOR_LAG`` so a flusher transaction that
took its ids before the run but committed after it is still seen next time.

Two runs at once: on PostgreSQL a transaction-level advisory lock serializes
them; elsewhere the first statement of the transaction is a write to the
state row, which takes the database's write lock (SQLite) or the row lock.
Running twice changes nothing the second time.

Rows of the levels the spine's pruning does not know (10 minutes: kept as
long as minute rows; 6 hours, day, week: as long as hour rows) are pruned here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Max, Min
from django.utils import timezone

from perfmonitor.analytics.query import (
    ALL,
    LEVELS,
    MINUTE,
    NAME_TOTAL_KINDS,
    STATE_KIND,
    STATE_NAME,
    floor_to,
)
from perfmonitor.analytics.sketch import merge_serialized
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.conf import settings
from perfmonitor.models import MetricRollup

logger = logging.getLogger("perfmonitor")

LOCK_KEY = 0x7066_6D63  # "pfmc": advisory lock id of compaction
CURSOR_LAG = timedelta(seconds=30)
BUCKETS_PER_TRANSACTION = 36  # of the level being built: bounds one transaction's rows
_ID_CHUNK = 500
_COLUMNS = ("id", "kind", "name", "dimension", "bucket_start", "count", "sum", "min", "max",
            "errors", "sketch")
STEPS = [timedelta(seconds=res) for res in LEVELS]

Key = tuple[str, str, str, datetime]


@dataclass
class _Acc:
    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    errors: int = 0
    blobs: list[bytes] = field(default_factory=list)

    def add(self, count: int, total: float, low: float | None, high: float | None,
            errors: int, blob: Any) -> None:
        self.count += count
        self.sum += total
        self.errors += errors
        if low is not None and (self.min is None or low < self.min):
            self.min = low
        if high is not None and (self.max is None or high > self.max):
            self.max = high
        if blob:
            self.blobs.append(bytes(blob))

    def add_acc(self, other: _Acc) -> None:
        self.add(other.count, other.sum, other.min, other.max, other.errors, None)
        self.blobs.extend(other.blobs)

    def sketch_bytes(self) -> bytes:
        return merge_serialized(self.blobs).to_bytes()


@dataclass
class CompactionResult:
    minutes_merged: int = 0
    minute_rows_removed: int = 0
    rows_written: dict[int, int] = field(default_factory=dict)
    buckets_folded: dict[int, int] = field(default_factory=dict)
    late_rows_folded: int = 0
    rows_pruned: int = 0
    skipped: bool = False
    seconds: float = 0.0

    @property
    def hour_rows_written(self) -> int:
        return self.rows_written.get(MetricRollup.HOUR, 0)

    @property
    def hours_folded(self) -> int:
        return self.buckets_folded.get(MetricRollup.HOUR, 0)

    @property
    def day_rows_written(self) -> int:
        return self.rows_written.get(86400, 0)

    @property
    def days_folded(self) -> int:
        return self.buckets_folded.get(86400, 0)

    def wrote(self, resolution: int, rows: int) -> None:
        self.rows_written[resolution] = self.rows_written.get(resolution, 0) + rows

    def folded(self, resolution: int, buckets: int) -> None:
        self.buckets_folded[resolution] = self.buckets_folded.get(resolution, 0) + buckets

    def as_dict(self) -> dict[str, Any]:
        return {"minutes_merged": self.minutes_merged,
                "minute_rows_removed": self.minute_rows_removed,
                "rows_written": {str(k): v for k, v in sorted(self.rows_written.items())},
                "buckets_folded": {str(k): v for k, v in sorted(self.buckets_folded.items())},
                "hour_rows_written": self.hour_rows_written,
                "late_rows_folded": self.late_rows_folded, "rows_pruned": self.rows_pruned,
                "seconds": self.seconds}

    def add(self, other: CompactionResult) -> None:
        self.minutes_merged += other.minutes_merged
        self.minute_rows_removed += other.minute_rows_removed
        self.late_rows_folded += other.late_rows_folded
        self.rows_pruned += other.rows_pruned
        for res, n in other.rows_written.items():
            self.wrote(res, n)
        for res, n in other.buckets_folded.items():
            self.folded(res, n)


def compact_rollups(now: datetime | None = None) -> CompactionResult:
    """Run compaction until caught up; safe to call concurrently and repeatedly."""
    started = time.monotonic()
    result = CompactionResult()
    now = now or timezone.now()
    closed = now - timedelta(seconds=settings.COMPACTION_GRACE_SECONDS)
    with capture_suppressed():
        for _ in range(100_000):  # bounded: each pass folds BUCKETS_PER_TRANSACTION per level
            step, more = _run_once(now, closed)
            result.add(step)
            if not more:
                break
        result.rows_pruned += _prune_levels(now)
    result.seconds = round(time.monotonic() - started, 3)
    if result.rows_written or result.minutes_merged or result.late_rows_folded:
        from perfmonitor.live import publish

        publish("metrics", {"compacted": result.as_dict()})
    return result


def _run_once(now: datetime, closed: datetime) -> tuple[CompactionResult, bool]:
    alias = router.db_for_write(MetricRollup)
    result = CompactionResult()
    more = False
    with transaction.atomic(using=alias):
        state = _lock(alias, now)
        marks = _marks()
        more |= _merge_minutes(marks, closed, result)
        for level in range(1, len(LEVELS)):
            more |= _fold_level(level, marks, closed, result)
            marks = _marks()
        if marks[1] is not None:
            _fold_late_minutes(state["cursor"], marks, result)
        _advance_cursor(state, now)
    return result, more


def _marks() -> list[datetime | None]:
    """Per level: end of the last bucket built (None: nothing built yet)."""
    return [None] + [_mark(res, step) for res, step in zip(LEVELS[1:], STEPS[1:], strict=True)]


# -- locking and state ------------------------------------------------------------------------


def _lock(alias: str, now: datetime) -> dict[str, Any]:
    connection = connections[alias]
    state_rows = MetricRollup.objects.using(alias).filter(kind=STATE_KIND, name=STATE_NAME)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
    elif not state_rows.update(compacted=True):
        # A write first: on SQLite it takes the database write lock for the
        # whole transaction, so a second run waits here instead of failing later.
        # The very first run has no state row to write to yet: create it, and
        # drop a twin a concurrent first run may have created.
        _create_state(alias, now)
        state_rows = state_rows.select_for_update()
    rows = list(state_rows.order_by("id").values("id", "count", "sum", "bucket_start"))
    if not rows:
        rows = [{"id": _create_state(alias, now), "count": 0, "sum": 0.0, "bucket_start": now}]
    if len(rows) > 1:
        MetricRollup.objects.using(alias).filter(pk__in=[r["id"] for r in rows[1:]]).delete()
    row = rows[0]
    return {"id": row["id"], "cursor": int(row["count"]), "pending": int(row["sum"]),
            "pending_at": row["bucket_start"]}


def _create_state(alias: str, now: datetime) -> int:
    return MetricRollup.objects.using(alias).create(
        kind=STATE_KIND, name=STATE_NAME, dimension="", resolution=0, bucket_start=now,
        count=0, sum=0.0, compacted=True).pk


def _advance_cursor(state: dict[str, Any], now: datetime) -> None:
    """Move the cursor to the newest id seen at least CURSOR_LAG ago."""
    if now - state["pending_at"] < CURSOR_LAG and state["pending"]:
        return
    newest = MetricRollup.objects.aggregate(m=Max("id"))["m"] or 0
    MetricRollup.objects.filter(pk=state["id"]).update(
        count=max(state["cursor"], state["pending"]), sum=float(newest), bucket_start=now)


def _mark(resolution: int, step: timedelta) -> datetime | None:
    latest = MetricRollup.objects.filter(resolution=resolution).aggregate(
        m=Max("bucket_start"))["m"]
    return latest + step if latest else None


def _earliest_uncompacted(resolution: int, since: datetime | None) -> datetime | None:
    rows = MetricRollup.objects.filter(resolution=resolution, compacted=False)
    if since is not None:
        rows = rows.filter(bucket_start__gte=since)
    return rows.aggregate(m=Min("bucket_start"))["m"]


# -- folding --------------------------------------------------------------------------------


def _merge_minutes(marks: list[datetime | None], closed: datetime,
                   result: CompactionResult) -> bool:
    """One row per series and closed minute (partial rows of several flushes merged)."""
    start = _earliest_uncompacted(MetricRollup.MINUTE, since=marks[1])
    if start is None:
        return False
    end = floor_to(closed, MINUTE)
    limit = floor_to(start, STEPS[1]) + STEPS[1] * BUCKETS_PER_TRANSACTION
    more = end > limit
    end = min(end, limit)
    rows = _uncompacted(MetricRollup.MINUTE, start, end)
    by_minute: dict[Key, list[tuple]] = {}
    for row in rows:
        by_minute.setdefault((row[1], row[2], row[3], row[4]), []).append(row)
    remove_ids: list[int] = []
    new_rows: list[MetricRollup] = []
    for key, group in by_minute.items():
        if len(group) < 2:
            continue
        acc = _Acc()
        for row in group:
            acc.add(row[5], row[6], row[7], row[8], row[9], row[10])
        remove_ids.extend(row[0] for row in group)
        new_rows.append(_row(key, MetricRollup.MINUTE, acc, compacted=False))
    _delete(remove_ids)
    MetricRollup.objects.bulk_create(new_rows, batch_size=500)
    result.minutes_merged += len(new_rows)
    result.minute_rows_removed += len(remove_ids) - len(new_rows)
    return more


def _fold_level(level: int, marks: list[datetime | None], closed: datetime,
                result: CompactionResult) -> bool:
    """Fold the uncompacted rows of the level below into this level's closed buckets."""
    below, step = LEVELS[level - 1], STEPS[level]
    start = _earliest_uncompacted(below, since=marks[level])
    if start is None:
        return False
    start = floor_to(start, step)
    closed_end = floor_to(closed, step)
    end = min(closed_end, start + step * BUCKETS_PER_TRANSACTION)
    if end <= start:
        return False
    rows = _uncompacted(below, start, end)
    if not rows:
        return False
    increments: dict[Key, _Acc] = {}
    for row in rows:
        _add(increments, row, step, aggregates=level == 1)
    _apply_chain(increments, level, marks, result)
    _mark_compacted([row[0] for row in rows])
    result.folded(LEVELS[level], len({key[3] for key in increments}))
    return end < closed_end and MetricRollup.objects.filter(
        resolution=below, compacted=False, bucket_start__gte=end,
        bucket_start__lt=closed_end).exists()


def _fold_late_minutes(cursor: int, marks: list[datetime | None],
                       result: CompactionResult) -> None:
    rows = list(MetricRollup.objects.filter(
        id__gt=cursor, resolution=MetricRollup.MINUTE, compacted=False,
        bucket_start__lt=marks[1]).exclude(kind=STATE_KIND).order_by().values_list(*_COLUMNS))
    if not rows:
        return
    increments: dict[Key, _Acc] = {}
    for row in rows:
        _add(increments, row, STEPS[1], aggregates=True)
    _apply_chain(increments, 1, marks, result)
    _mark_compacted([row[0] for row in rows])
    result.late_rows_folded += len(rows)
    logger.info("perfmonitor: folded %d late rollup rows into their buckets", len(rows))


def _uncompacted(resolution: int, start: datetime, end: datetime) -> list[tuple]:
    return list(MetricRollup.objects.filter(
        resolution=resolution, compacted=False, bucket_start__gte=start,
        bucket_start__lt=end).exclude(kind=STATE_KIND).order_by().values_list(*_COLUMNS))


def _add(increments: dict[Key, _Acc], row: tuple, step: timedelta, aggregates: bool) -> None:
    kind, name, dimension = row[1], row[2], row[3]
    bucket = floor_to(row[4], step)
    keys = [(kind, name, dimension, bucket)]
    if aggregates:  # aggregate series start at the first level; above they fold like any
        keys.append((kind, ALL, ALL, bucket))
        if kind in NAME_TOTAL_KINDS:
            keys.append((kind, name, ALL, bucket))
    for key in keys:
        acc = increments.get(key)
        if acc is None:
            acc = increments[key] = _Acc()
        acc.add(row[5], row[6], row[7], row[8], row[9], row[10])


def _apply_chain(increments: dict[Key, _Acc], level: int, marks: list[datetime | None],
                 result: CompactionResult) -> None:
    """Apply increments at this level, and at every level above already built there."""
    while increments:
        up = level + 1

        def built_above(bucket: datetime, up: int = up) -> bool:
            mark = marks[up] if up < len(LEVELS) else None
            return mark is not None and floor_to(bucket, STEPS[up]) < mark

        result.wrote(LEVELS[level], _apply(increments, LEVELS[level], built_above))
        if up >= len(LEVELS):
            return
        lifted: dict[Key, _Acc] = {}
        for (kind, name, dimension, bucket), acc in increments.items():
            if built_above(bucket):
                key = (kind, name, dimension, floor_to(bucket, STEPS[up]))
                lifted.setdefault(key, _Acc()).add_acc(acc)
        increments, level = lifted, up


def _prune_levels(now: datetime) -> int:
    """Rows of the levels the spine's retention does not prune."""
    minute_cutoff = now - timedelta(days=settings.MINUTE_ROLLUP_RETENTION_DAYS)
    hour_cutoff = now - timedelta(days=settings.HOUR_ROLLUP_RETENTION_DAYS)
    pruned = 0
    for resolution in LEVELS[1:]:
        if resolution in (MetricRollup.MINUTE, MetricRollup.HOUR):
            continue
        cutoff = minute_cutoff if resolution < MetricRollup.HOUR else hour_cutoff
        pruned += MetricRollup.objects.filter(resolution=resolution,
                                              bucket_start__lt=cutoff).delete()[0]
    return pruned


# -- writing ----------------------------------------------------------------------------------


def _apply(increments: dict[Key, _Acc], resolution: int, compacted: Any) -> int:
    """Merge increments into existing rows at this resolution, insert the missing ones."""
    buckets = {key[3] for key in increments}
    kinds = {key[0] for key in increments}
    existing: dict[Key, tuple] = {}
    for row in MetricRollup.objects.filter(resolution=resolution, bucket_start__in=buckets,
                                           kind__in=kinds).order_by().values_list(*_COLUMNS):
        existing[(row[1], row[2], row[3], row[4])] = row
    new_rows = []
    for key, acc in increments.items():
        row = existing.get(key)
        if row is None:
            new_rows.append(_row(key, resolution, acc, compacted=compacted(key[3])))
            continue
        merged = _Acc()  # never mutate the increment: callers reuse it for day rows
        merged.add_acc(acc)
        merged.add(row[5], row[6], row[7], row[8], row[9], row[10])
        MetricRollup.objects.filter(pk=row[0]).update(
            count=merged.count, sum=merged.sum, min=merged.min, max=merged.max,
            errors=merged.errors, sketch=merged.sketch_bytes())
    MetricRollup.objects.bulk_create(new_rows, batch_size=500)
    return len(new_rows)


def _row(key: Key, resolution: int, acc: _Acc, *, compacted: bool) -> MetricRollup:
    kind, name, dimension, bucket = key
    return MetricRollup(kind=kind, name=name, dimension=dimension, bucket_start=bucket,
                        resolution=resolution, count=acc.count, sum=acc.sum, min=acc.min,
                        max=acc.max, errors=acc.errors, sketch=acc.sketch_bytes(),
                        compacted=compacted)


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), _ID_CHUNK):
        yield ids[i:i + _ID_CHUNK]


def _mark_compacted(ids: list[int]) -> None:
    for chunk in _chunks(ids):
        MetricRollup.objects.filter(pk__in=chunk).update(compacted=True)


def _delete(ids: list[int]) -> None:
    for chunk in _chunks(ids):
        MetricRollup.objects.filter(pk__in=chunk).delete()
