"""Turns a batch of records into raw rows and partial rollups and writes them.

PostgreSQL gets COPY (psycopg 3); other databases get ``bulk_create``. The
whole batch is written in one transaction with capture suppressed, so
perfmonitor's own writes never show up as the host's queries.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from perfmonitor.analytics.sketch import QuantileSketch
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.capture.fingerprint import FingerprintCache
from perfmonitor.ids import uuid7
from perfmonitor.models import MetricRollup, PerformanceMetric, QueryFingerprint, WebVital

ROW_MODELS = {"metric": PerformanceMetric, "vital": WebVital}
_ROW_DEFAULTS = {
    "metric": {"session_id": "", "user_id": "", "url": "", "metadata": {}, "error_details": None,
               "duration": None},
    "vital": {"session_id": "", "user_id": "", "url": "", "metadata": {}},
}

_fingerprints = FingerprintCache()
_known_fingerprints: set[str] = set()


def db_datetime(ts: float) -> datetime:
    moment = datetime.fromtimestamp(ts, tz=UTC)
    from django.conf import settings as django_settings

    if not django_settings.USE_TZ:
        return timezone.make_naive(moment, timezone.get_default_timezone())
    return moment


class _Partial:
    __slots__ = ("count", "sum", "min", "max", "errors", "sketch")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.errors = 0
        self.sketch = QuantileSketch()


class Sink:
    """Collects what a batch of records expands into."""

    def __init__(self) -> None:
        self.partials: dict[tuple[str, str, str, int], _Partial] = {}
        self.rows: dict[str, list[tuple[float, dict[str, Any]]]] = {"metric": [], "vital": []}
        self.new_fingerprints: dict[str, str] = {}

    def measure(self, kind: str, name: str, dimension: str, value: float, error: bool,
                ts: float, weight: int = 1) -> None:
        key = (kind, name[:255], dimension[:255], int(ts // 60) * 60)
        partial = self.partials.get(key)
        if partial is None:
            partial = self.partials[key] = _Partial()
        partial.count += weight
        partial.sum += value * weight
        if value < partial.min:
            partial.min = value
        if value > partial.max:
            partial.max = value
        if error:
            partial.errors += weight
        partial.sketch.add(value, weight)

    def row(self, model: str, ts: float, fields: dict[str, Any]) -> None:
        self.rows[model].append((ts, fields))

    def fingerprint(self, sql: str) -> tuple[str, str]:
        fp, normalized = _fingerprints.get(sql)
        if fp not in _known_fingerprints:
            self.new_fingerprints[fp] = normalized
        return fp, normalized

    @property
    def row_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def expand(records: Iterable[Any]) -> tuple[Sink, int]:
    """Expand records into a Sink; bad records are skipped and counted, never raised."""
    sink = Sink()
    failures = 0
    for record in records:
        try:
            record.expand(sink)
        except Exception:
            failures += 1
    return sink, failures


def _rollup_rows(sink: Sink) -> list[dict[str, Any]]:
    rows = []
    for (kind, name, dimension, bucket), p in sink.partials.items():
        rows.append({
            "kind": kind, "name": name, "dimension": dimension,
            "bucket_start": db_datetime(bucket), "resolution": MetricRollup.MINUTE,
            "count": p.count, "sum": p.sum, "min": p.min, "max": p.max, "errors": p.errors,
            "sketch": p.sketch.to_bytes(), "compacted": False,
        })
    return rows


def _raw_rows(sink: Sink, now: datetime) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for model, items in sink.rows.items():
        defaults = _ROW_DEFAULTS[model]
        built = []
        for ts, fields in items:
            row = {**defaults, **fields}
            row["id"] = uuid7(int(ts * 1000))
            row["timestamp"] = db_datetime(ts)
            row["created_at"] = now
            built.append(row)
        out[model] = built
    return out


def _copy(connection: Any, model: type, rows: list[dict[str, Any]]) -> None:
    fields = [f for f in model._meta.concrete_fields
              if not (f.primary_key and f.get_internal_type() == "BigAutoField")]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    json_columns = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    with connection.cursor() as cursor:
        raw_cursor = cursor.cursor
        with raw_cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                values = []
                for f in fields:
                    value = row.get(f.attname)
                    if f.attname in json_columns and value is not None:
                        value = json.dumps(value, default=str)
                    values.append(value)
                copy.write_row(values)


def _bulk_create(model: type, rows: list[dict[str, Any]], using: str) -> None:
    model.objects.using(using).bulk_create([model(**row) for row in rows], batch_size=500)


def write(sink: Sink) -> int:
    """Write everything in the sink; return the number of rows written."""
    alias = router.db_for_write(MetricRollup)
    connection = connections[alias]
    now = timezone.now()
    rollups = _rollup_rows(sink)
    raw = _raw_rows(sink, now)
    written = 0
    with capture_suppressed(), transaction.atomic(using=alias):
        use_copy = connection.vendor == "postgresql"
        for model_key, rows in raw.items():
            if not rows:
                continue
            model = ROW_MODELS[model_key]
            if use_copy:
                _copy(connection, model, rows)
            else:
                _bulk_create(model, rows, alias)
            written += len(rows)
        if rollups:
            if use_copy:
                _copy(connection, MetricRollup, rollups)
            else:
                MetricRollup.objects.using(alias).bulk_create(
                    [MetricRollup(**r) for r in rollups], batch_size=500)
            written += len(rollups)
        if sink.new_fingerprints:
            QueryFingerprint.objects.using(alias).bulk_create(
                [QueryFingerprint(fingerprint=fp, sql=sql)
                 for fp, sql in sink.new_fingerprints.items()],
                ignore_conflicts=True, batch_size=500)
    _known_fingerprints.update(sink.new_fingerprints)
    if len(_known_fingerprints) > 100_000:
        _known_fingerprints.clear()
    return written
