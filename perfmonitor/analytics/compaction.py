"""Compaction: partial minute rows -> one row per minute -> hour rows -> day rows.

Every flush appends partial minute rows. A compaction run, under a lock:

1. merges the partial rows of each closed minute into one row;
2. folds the minute rows of every closed hour into hour rows (one per series,
   plus the aggregate series ``*``, see :mod:`perfmonitor.analytics.query`)
   and marks them ``compacted``;
3. folds late minute rows (rows that arrived after their hour was folded:
   a flusher that retried through a database outage) into the existing hour
   row, and into the day row when the day was folded too;
4. folds the hour rows of every closed day into day rows.

A minute row's ``compacted`` flag says "my data is in my hour row"; an hour
row's says "my data is in my day row". Each step changes the flag and the
coarser row in one transaction, so a datum is always in exactly one place a
reader counts, whatever runs concurrently.

Late rows are found by id, not time: the state row keeps a cursor below which
every row has been examined, so a run looks only at rows inserted since. The
cursor trails the newest id by ``CURSOR_LAG`` so a flusher transaction that
took its ids before the run but committed after it is still seen next time.

Two runs at once: on PostgreSQL a transaction-level advisory lock serializes
them; elsewhere the first statement of the transaction is a write to the
state row, which takes the database's write lock (SQLite) or the row lock.
Running twice changes nothing the second time.
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
    DAY,
    DAY_RESOLUTION,
    HOUR,
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
HOURS_PER_TRANSACTION = 6
_ID_CHUNK = 500
_COLUMNS = ("id", "kind", "name", "dimension", "bucket_start", "count", "sum", "min", "max",
            "errors", "sketch")

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
    hours_folded: int = 0
    hour_rows_written: int = 0
    late_rows_folded: int = 0
    days_folded: int = 0
    day_rows_written: int = 0
    skipped: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def add(self, other: CompactionResult) -> None:
        for key, value in other.__dict__.items():
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, key, getattr(self, key) + value)


def compact_rollups(now: datetime | None = None) -> CompactionResult:
    """Run compaction until caught up; safe to call concurrently and repeatedly."""
    started = time.monotonic()
    result = CompactionResult()
    now = now or timezone.now()
    grace = timedelta(seconds=settings.COMPACTION_GRACE_SECONDS)
    closed = now - grace
    with capture_suppressed():
        for _ in range(10_000):  # bounded: each pass folds up to HOURS_PER_TRANSACTION
            step, more = _run_once(now, closed)
            result.add(step)
            if not more:
                break
    result.seconds = round(time.monotonic() - started, 3)
    if result.hour_rows_written or result.minutes_merged or result.late_rows_folded:
        from perfmonitor.live import publish

        publish("metrics", {"compacted": result.as_dict()})
    return result


def _run_once(now: datetime, closed: datetime) -> tuple[CompactionResult, bool]:
    alias = router.db_for_write(MetricRollup)
    result = CompactionResult()
    with transaction.atomic(using=alias):
        state = _lock(alias, now)
        hour_mark = _mark(MetricRollup.HOUR, HOUR)
        day_mark = _mark(DAY_RESOLUTION, DAY)
        closed_minute = floor_to(closed, MINUTE)
        closed_hour = floor_to(closed, HOUR)
        closed_day = floor_to(closed, DAY)

        region_start = _earliest_uncompacted(MetricRollup.MINUTE, since=hour_mark)
        more = False
        if region_start is not None:
            region_start = floor_to(region_start, HOUR)
            region_end = closed_minute
            limit = floor_to(region_start, HOUR) + HOUR * HOURS_PER_TRANSACTION
            if region_end > limit:
                region_end, more = limit, True
            fold_until = min(closed_hour, region_end)
            _merge_and_fold_minutes(region_start, region_end, fold_until, day_mark, result)
        if hour_mark is not None:
            _fold_late_minutes(state["cursor"], hour_mark, day_mark, result)
        day_start = _earliest_uncompacted(MetricRollup.HOUR, since=day_mark)
        if day_start is not None and not more:
            _fold_days(day_start, closed_day, result)
        _advance_cursor(state, now)
    return result, more


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


# -- minutes -> hours -------------------------------------------------------------------------


def _merge_and_fold_minutes(start: datetime, end: datetime, fold_until: datetime,
                            day_mark: datetime | None, result: CompactionResult) -> None:
    rows = list(MetricRollup.objects.filter(
        resolution=MetricRollup.MINUTE, compacted=False, bucket_start__gte=start,
        bucket_start__lt=end).exclude(kind=STATE_KIND).order_by().values_list(*_COLUMNS))
    if not rows:
        return
    by_minute: dict[Key, list[tuple]] = {}
    for row in rows:
        by_minute.setdefault((row[1], row[2], row[3], row[4]), []).append(row)
    fold_ids: list[int] = []
    remove_ids: list[int] = []
    new_rows: list[MetricRollup] = []
    hourly: dict[Key, _Acc] = {}
    for key, group in by_minute.items():
        folding = key[3] < fold_until
        if folding:
            for row in group:
                _add_to_hour(hourly, row)
        if len(group) == 1:
            if folding:
                fold_ids.append(group[0][0])
            continue
        acc = _Acc()
        for row in group:
            acc.add(row[5], row[6], row[7], row[8], row[9], row[10])
        remove_ids.extend(row[0] for row in group)
        new_rows.append(_row(key, MetricRollup.MINUTE, acc, compacted=folding))
        result.minutes_merged += 1
    _delete(remove_ids)
    result.minute_rows_removed += len(remove_ids) - len(new_rows)
    MetricRollup.objects.bulk_create(new_rows, batch_size=500)
    _mark_compacted(fold_ids)
    if hourly:
        folded_days = _days_before(day_mark)
        result.hour_rows_written += _apply(hourly, MetricRollup.HOUR, folded_days)
        result.hours_folded += len({key[3] for key in hourly})
        _apply_to_days(hourly, folded_days, result)


def _fold_late_minutes(cursor: int, hour_mark: datetime, day_mark: datetime | None,
                       result: CompactionResult) -> None:
    rows = list(MetricRollup.objects.filter(
        id__gt=cursor, resolution=MetricRollup.MINUTE, compacted=False,
        bucket_start__lt=hour_mark).exclude(kind=STATE_KIND).order_by().values_list(*_COLUMNS))
    if not rows:
        return
    hourly: dict[Key, _Acc] = {}
    for row in rows:
        _add_to_hour(hourly, row)
    folded_days = _days_before(day_mark)
    _apply(hourly, MetricRollup.HOUR, folded_days)
    _apply_to_days(hourly, folded_days, result)
    _mark_compacted([row[0] for row in rows])
    result.late_rows_folded += len(rows)
    logger.info("perfmonitor: folded %d late rollup rows into their hours", len(rows))


def _add_to_hour(hourly: dict[Key, _Acc], row: tuple) -> None:
    kind, name, dimension = row[1], row[2], row[3]
    hour = floor_to(row[4], HOUR)
    keys = [(kind, name, dimension, hour), (kind, ALL, ALL, hour)]
    if kind in NAME_TOTAL_KINDS:
        keys.append((kind, name, ALL, hour))
    for key in keys:
        acc = hourly.get(key)
        if acc is None:
            acc = hourly[key] = _Acc()
        acc.add(row[5], row[6], row[7], row[8], row[9], row[10])


def _days_before(day_mark: datetime | None):  # noqa: ANN202
    return (lambda bucket: day_mark is not None and floor_to(bucket, DAY) < day_mark)


def _apply_to_days(hourly: dict[Key, _Acc], folded_days: Any, result: CompactionResult) -> None:
    """Increments of hours whose day is already folded go into the day row too."""
    daily: dict[Key, _Acc] = {}
    for (kind, name, dimension, hour), acc in hourly.items():
        if folded_days(hour):
            key = (kind, name, dimension, floor_to(hour, DAY))
            daily.setdefault(key, _Acc()).add_acc(acc)
    if daily:
        result.day_rows_written += _apply(daily, DAY_RESOLUTION, lambda _bucket: False)


# -- hours -> days ----------------------------------------------------------------------------


def _fold_days(start: datetime, closed_day: datetime, result: CompactionResult) -> None:
    start = floor_to(start, DAY)
    if closed_day <= start:
        return
    rows = list(MetricRollup.objects.filter(
        resolution=MetricRollup.HOUR, compacted=False, bucket_start__gte=start,
        bucket_start__lt=closed_day).order_by().values_list(*_COLUMNS))
    if not rows:
        return
    daily: dict[Key, _Acc] = {}
    for row in rows:
        key = (row[1], row[2], row[3], floor_to(row[4], DAY))
        daily.setdefault(key, _Acc()).add(row[5], row[6], row[7], row[8], row[9], row[10])
    result.day_rows_written += _apply(daily, DAY_RESOLUTION, lambda _bucket: False)
    result.days_folded += len({key[3] for key in daily})
    _mark_compacted([row[0] for row in rows])


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
