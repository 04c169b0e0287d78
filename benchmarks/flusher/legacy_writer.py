"""The writer as it was before the bulk write path (frozen copy, for side-by-side timing).

Only the benchmark imports it; it shares the models and the sketch class with the
package, so both paths write the same tables.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings as django_settings
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.db.models import Model
from django.utils import timezone

from perfmonitor.analytics.sketch import QuantileSketch
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.capture.fingerprint import FingerprintCache
from perfmonitor.models import (
    MetricRollup,
    MonitorHealth,
    PerformanceMetric,
    QueryFingerprint,
    WebVital,
)

ROW_MODELS = {"metric": PerformanceMetric, "vital": WebVital}
_ROW_DEFAULTS: dict[str, dict[str, Any]] = {
    "metric": {"session_id": "", "user_id": "", "url": "", "metadata": {}, "error_details": None,
               "duration": None},
    "vital": {"session_id": "", "user_id": "", "url": "", "metadata": {}},
}



def uuid7(timestamp_ms: int | None = None) -> uuid.UUID:
    ms = int(timestamp_ms)  # type: ignore[arg-type]
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 68 & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


_fingerprints = FingerprintCache()
_known_fingerprints: set[str] = set()
MAX_KNOWN_FINGERPRINTS = 100_000


def forget_known_fingerprints() -> None:
    _known_fingerprints.clear()


def db_datetime(ts: float) -> datetime:
    """A Unix timestamp as the datetime Django stores: aware with USE_TZ, local naive without."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    if not django_settings.USE_TZ:
        return timezone.make_naive(moment, timezone.get_default_timezone())
    return moment


def is_connection_error(exc: BaseException) -> bool:
    """The database is away (retry later), as opposed to refusing this data."""
    return isinstance(exc, OperationalError | InterfaceError)


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
        if not math.isfinite(value):  # NaN / infinity would poison every aggregate
            return
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

    def measure_queries(self, queries: Iterable[tuple[str, float, bool]], dimension: str,
                        ts: float, slow_ms: float) -> tuple[list[str], bool]:
        # What the records did themselves before the sink took this over: a fingerprint
        # and a measure() per query.
        fps = []
        any_slow = False
        for sql, ms, failed in queries:
            fp = self.fingerprint(sql)[0]
            self.measure("query", fp, dimension, ms, failed, ts)
            fps.append(fp)
            any_slow = any_slow or ms >= slow_ms
        return fps, any_slow

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


def expand_records(records: Iterable[Any]) -> tuple[Sink, list[Any], int]:
    """Expand records into a Sink: (sink, records that expanded, how many failed)."""
    sink = Sink()
    good = []
    failures = 0
    from perfmonitor.capture.records import expand_standalone

    for record in records:
        try:
            if type(record) is tuple:  # a query outside requests, as the hook pushes it
                expand_standalone(record, sink)
            else:
                record.expand(sink)
        except Exception:
            failures += 1
        else:
            good.append(record)
    return sink, good, failures


def expand(records: Iterable[Any]) -> tuple[Sink, int]:
    """Expand records into a Sink; bad records are skipped and counted, never raised."""
    sink, _, failures = expand_records(records)
    return sink, failures


# -- cleaning ------------------------------------------------------------------

def _clean_text(value: str, limit: int | None = None) -> str:
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value[:limit] if limit else value


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return {_clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / Infinity
    return value


def _column_rules(model: type[Model]) -> tuple[dict[str, int | None], set[str]]:
    text: dict[str, int | None] = {}
    json_fields: set[str] = set()
    for field in model._meta.concrete_fields:
        kind = field.get_internal_type()
        if kind in ("CharField", "TextField"):
            text[field.attname] = field.max_length if kind == "CharField" else None
        elif kind == "JSONField":
            json_fields.add(field.attname)
    return text, json_fields


_RULES = {key: _column_rules(model) for key, model in ROW_MODELS.items()}


def _clean_row(model_key: str, row: dict[str, Any]) -> dict[str, Any]:
    text, json_fields = _RULES[model_key]
    for name, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            row[name] = None
        elif name in text and isinstance(value, str):
            row[name] = _clean_text(value, text[name])
        elif name in json_fields and value is not None:
            row[name] = _clean_json(value)
    return row


# -- rows ----------------------------------------------------------------------

def _rollup_rows(sink: Sink) -> list[dict[str, Any]]:
    rows = []
    for (kind, name, dimension, bucket), p in sink.partials.items():
        rows.append({
            "kind": kind, "name": _clean_text(name), "dimension": _clean_text(dimension),
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
            row = _clean_row(model, {**defaults, **fields})
            row["id"] = uuid7(int(ts * 1000))
            row["timestamp"] = db_datetime(ts)
            row["created_at"] = now
            built.append(row)
        out[model] = built
    return out


def _copy(connection: Any, model: type[Model], rows: list[dict[str, Any]]) -> None:
    fields = [f for f in model._meta.concrete_fields
              if not (f.primary_key and f.get_internal_type() == "BigAutoField")]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    json_columns = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    # The raw psycopg cursor bypasses Django's error translation: restore it, so
    # a lost connection is an OperationalError like everywhere else.
    statement = f"COPY {table} ({columns}) FROM STDIN"
    with connection.wrap_database_errors, connection.cursor() as cursor, \
            cursor.cursor.copy(statement) as copy:
        for row in rows:
            values = []
            for f in fields:
                value = row.get(f.attname)
                if f.attname in json_columns and value is not None:
                    value = json.dumps(value, default=str)
                values.append(value)
            copy.write_row(values)


def _insert(connection: Any, alias: str, model: type[Model], rows: list[dict[str, Any]]) -> None:
    if connection.vendor == "postgresql":
        _copy(connection, model, rows)
    else:
        model._default_manager.using(alias).bulk_create([model(**row) for row in rows],
                                                        batch_size=500)


def _write(sink: Sink, alias: str) -> int:
    connection = connections[alias]
    rollups = _rollup_rows(sink)
    raw = _raw_rows(sink, timezone.now())
    written = 0
    with capture_suppressed(), transaction.atomic(using=alias):
        for model_key, rows in raw.items():
            if rows:
                _insert(connection, alias, ROW_MODELS[model_key], rows)
                written += len(rows)
        if rollups:
            _insert(connection, alias, MetricRollup, rollups)
            written += len(rollups)
        if sink.new_fingerprints:
            QueryFingerprint.objects.using(alias).bulk_create(
                [QueryFingerprint(fingerprint=fp, sql=_clean_text(sql))
                 for fp, sql in sink.new_fingerprints.items()],
                ignore_conflicts=True, batch_size=500)
    if len(_known_fingerprints) > MAX_KNOWN_FINGERPRINTS:
        _known_fingerprints.clear()
    _known_fingerprints.update(sink.new_fingerprints)
    return written


def _discard_connection(connection: Any) -> None:
    if connection.in_atomic_block:  # a caller's transaction (flush_now in a test): keep it
        return
    with contextlib.suppress(Exception):
        connection.close()


def write(sink: Sink) -> int:
    """Write everything in the sink; return the number of rows written."""
    alias = router.db_for_write(MetricRollup)
    connection = connections[alias]
    reused = connection.connection is not None
    try:
        return _write(sink, alias)
    except Exception as exc:
        _discard_connection(connection)
        if not (reused and is_connection_error(exc)):
            raise
    # The kept-open connection was dead (server restart, idle timeout): one
    # fresh try before this counts as a failed flush.
    try:
        return _write(sink, alias)
    except Exception:
        _discard_connection(connection)
        raise


def write_health(stats: dict[str, Any]) -> None:
    """Upsert this process's MonitorHealth row."""
    alias = router.db_for_write(MonitorHealth)
    values = {
        "started_at": db_datetime(stats["started_at"]),
        "updated_at": db_datetime(datetime.now(tz=UTC).timestamp()),
        "captured": stats["captured"], "flushed": stats["flushed"],
        "dropped": stats["dropped"], "flush_errors": stats["flush_errors"],
        "internal_errors": stats["internal_errors"], "buffer_size": stats["buffer_size"],
        "last_flush_at": db_datetime(stats["last_flush_at"]) if stats["last_flush_at"] else None,
        "last_error": _clean_text(stats["last_error"]),
    }
    rows = MonitorHealth.objects.using(alias)
    with capture_suppressed():
        if rows.filter(process=stats["process"]).update(**values):
            return
        try:
            with transaction.atomic(using=alias):
                rows.create(process=stats["process"], **values)
        except IntegrityError:  # created meanwhile (same host:pid after a restart)
            rows.filter(process=stats["process"]).update(**values)
