"""Raw rows: how they are cleaned, and how they travel to PostgreSQL.

Cleaning makes any row one the database accepts: NUL characters (PostgreSQL
rejects them in text and JSON) are removed, strings are cut to their column's
length, NaN and infinities become NULL (JSON: null).

On PostgreSQL the rows are encoded straight into COPY's binary format: no row
dicts, no per-value adapters, and no text for the server to parse (timestamps,
UUIDs and floats travel as their binary values). Per row the work is one
``orjson`` call per JSON column (its text is checked once for an encoded NUL;
only then is the value walked and cleaned) and a lookup per text column, whose
encoded form is cached per batch: beacons of a batch share their session, page
and names. Ids come from :func:`perfmonitor.ids.uuid7_bytes_many`, a whole batch
at a time.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import orjson
from django.db.models import Model

from perfmonitor.ids import uuid7_bytes_many
from perfmonitor.models import MetricRollup, PerformanceMetric, WebVital

ROW_MODELS: dict[str, type[Model]] = {"metric": PerformanceMetric, "vital": WebVital}
ROW_DEFAULTS: dict[str, dict[str, Any]] = {
    "metric": {"session_id": "", "user_id": "", "url": "", "metadata": {}, "error_details": None,
               "duration": None},
    "vital": {"session_id": "", "user_id": "", "url": "", "metadata": {}},
}


# -- cleaning (bulk_create, and values orjson refuses) --------------------------------

def clean_text(value: str, limit: int | None = None) -> str:
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value[:limit] if limit else value


def clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
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


def clean_row(model_key: str, row: dict[str, Any]) -> dict[str, Any]:
    text, json_fields = _RULES[model_key]
    for name, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            row[name] = None
        elif name in text and isinstance(value, str):
            row[name] = clean_text(value, text[name])
        elif name in json_fields and value is not None:
            row[name] = clean_json(value)
    return row


# -- PostgreSQL binary COPY -------------------------------------------------------------

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
CHUNK_ROWS = 1000
_NULL = b"\xff\xff\xff\xff"
_PG_EPOCH = 946_684_800  # 2000-01-01T00:00:00Z, where PostgreSQL's timestamps count from
_length = struct.Struct(">i").pack
_float8 = struct.Struct(">id").pack  # length 8, value
_timestamp = struct.Struct(">iq").pack  # length 8, microseconds since _PG_EPOCH

# Column order of the encoders below; a test checks they cover every column.
COPY_COLUMNS = {
    "metric": ("id", "session_id", "user_id", "metric_type", "metric_name", "duration",
               "timestamp", "url", "metadata", "error_details", "created_at"),
    "vital": ("id", "session_id", "user_id", "metric_name", "value", "rating", "timestamp",
              "url", "metadata", "created_at"),
}
# Field count (int16), then the id's length: every row starts with these bytes.
_ROW_START = {key: struct.pack(">hi", len(columns), 16) for key, columns in COPY_COLUMNS.items()}


def _limit(model: type[Model], name: str) -> int | None:
    return model._meta.get_field(name).max_length  # type: ignore[union-attr]


def _text(value: Any, limit: int | None) -> bytes:
    if value.__class__ is not str:
        if value is None:
            return _NULL
        value = str(value)
    if "\x00" in value:
        value = value.replace("\x00", "")
    data = value[:limit].encode()
    return _length(len(data)) + data


def _cached_text(cache: dict[str, bytes], value: Any, limit: int | None) -> bytes:
    if value.__class__ is not str:
        return _text(value, limit)
    found = cache.get(value)
    if found is None:
        found = cache[value] = _text(value, limit)
    return found


def _float(value: Any) -> bytes:
    if value.__class__ is not float:
        if value is None:
            return _NULL
        value = float(value)
    return _float8(8, value) if value - value == 0.0 else _NULL  # NaN, infinities: NULL


def microseconds(ts: float) -> int:
    """A Unix timestamp in microseconds, rounded as ``datetime.fromtimestamp`` rounds it."""
    frac, whole = math.modf(ts)
    micros = round(frac * 1e6)  # half to even, as datetime does
    return int(whole) * 1_000_000 + micros


def timestamp_field(ts: float) -> bytes:
    return _timestamp(8, microseconds(ts) - _PG_EPOCH * 1_000_000)


# NaN and infinities become null, as cleaning makes them; types JSON has no form for
# go through str() as with json.dumps(default=str), floats of other types stay numbers.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json_default(value: Any) -> Any:
    return float(value) if isinstance(value, float) else str(value)


def _json(value: Any) -> bytes:
    """A jsonb field (version byte 1, then the text): encoded once, cleaned only if needed."""
    if value is None:
        return _NULL
    try:
        data = orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS)
    except TypeError:  # keys that are not strings, integers beyond 64 bits, deep nesting
        data = json.dumps(clean_json(value), default=str).encode()
    else:
        if b"\\u0000" in data:  # a NUL somewhere (or the six characters, rarely): clean
            data = json.dumps(clean_json(value), default=str).encode()
    return _length(len(data) + 1) + b"\x01" + data


class _Batch:
    """What the rows of one batch share: encoded texts and timestamps, the creation time."""

    __slots__ = ("texts", "stamps", "created")

    def __init__(self, created: float) -> None:
        self.texts: dict[str, dict[str, bytes]] = {}
        self.stamps: dict[float, bytes] = {}
        self.created = timestamp_field(created)

    def cache(self, column: str) -> dict[str, bytes]:
        return self.texts.setdefault(column, {})

    def stamp(self, ts: float) -> bytes:
        found = self.stamps.get(ts)
        if found is None:
            found = self.stamps[ts] = timestamp_field(ts)
        return found


_M_SESSION = _limit(PerformanceMetric, "session_id")
_M_USER = _limit(PerformanceMetric, "user_id")
_M_TYPE = _limit(PerformanceMetric, "metric_type")
_M_NAME = _limit(PerformanceMetric, "metric_name")
_V_SESSION, _V_USER = _limit(WebVital, "session_id"), _limit(WebVital, "user_id")
_V_NAME, _V_RATING = _limit(WebVital, "metric_name"), _limit(WebVital, "rating")


def _metric_rows(items: list[tuple[float, dict[str, Any]]], ids: bytes,
                 batch: _Batch) -> list[bytes]:
    start, created, stamp = _ROW_START["metric"], batch.created, batch.stamp
    sessions, users = batch.cache("m.session"), batch.cache("m.user")
    kinds, names, urls = batch.cache("m.type"), batch.cache("m.name"), batch.cache("m.url")
    out = []
    for i, (ts, fields) in enumerate(items):
        get = fields.get
        out.append(b"".join((
            start, ids[16 * i:16 * i + 16],
            _cached_text(sessions, get("session_id", ""), _M_SESSION),
            _cached_text(users, get("user_id", ""), _M_USER),
            _cached_text(kinds, get("metric_type"), _M_TYPE),
            _cached_text(names, get("metric_name"), _M_NAME),
            _float(get("duration")), stamp(ts),
            _cached_text(urls, get("url", ""), None),
            _json(get("metadata", {})), _json(get("error_details")), created,
        )))
    return out


def _vital_rows(items: list[tuple[float, dict[str, Any]]], ids: bytes,
                batch: _Batch) -> list[bytes]:
    start, created, stamp = _ROW_START["vital"], batch.created, batch.stamp
    sessions, users = batch.cache("v.session"), batch.cache("v.user")
    names, ratings, urls = batch.cache("v.name"), batch.cache("v.rating"), batch.cache("v.url")
    out = []
    for i, (ts, fields) in enumerate(items):
        get = fields.get
        out.append(b"".join((
            start, ids[16 * i:16 * i + 16],
            _cached_text(sessions, get("session_id", ""), _V_SESSION),
            _cached_text(users, get("user_id", ""), _V_USER),
            _cached_text(names, get("metric_name"), _V_NAME),
            _float(get("value")),
            _cached_text(ratings, get("rating"), _V_RATING),
            stamp(ts), _cached_text(urls, get("url", ""), None),
            _json(get("metadata", {})), created,
        )))
    return out


_ENCODERS = {"metric": _metric_rows, "vital": _vital_rows}


def binary_copy_chunks(model_key: str, items: list[tuple[float, dict[str, Any]]],
                       created: float, between_chunks: Any = None) -> list[bytes]:
    """The whole COPY ... (FORMAT BINARY) stream of the rows, in chunks of CHUNK_ROWS rows.

    ``between_chunks`` is called after each chunk (the flusher lets request threads in).
    """
    ids = uuid7_bytes_many([int(ts * 1000) for ts, _ in items])
    batch = _Batch(created)
    encode = _ENCODERS[model_key]
    chunks = [HEADER]
    for start in range(0, len(items), CHUNK_ROWS):
        end = start + CHUNK_ROWS
        chunks.append(b"".join(encode(items[start:end], ids[16 * start:16 * end], batch)))
        if between_chunks is not None:
            between_chunks()
    chunks.append(TRAILER)
    return chunks


# -- rollup rows -------------------------------------------------------------------------

# Every column but the id, in this order (a test checks it against the model).
ROLLUP_COPY_COLUMNS = ("kind", "name", "dimension", "bucket_start", "resolution", "count",
                       "sum", "min", "max", "errors", "sketch", "compacted")
_ROLLUP_ROW_START = struct.pack(">h", len(ROLLUP_COPY_COLUMNS))
_int4 = struct.Struct(">ii").pack  # length 4, value
_int8 = struct.Struct(">iq").pack  # length 8, value
_FALSE = struct.pack(">ib", 1, 0)
_R_KIND = _limit(MetricRollup, "kind")
_R_NAME, _R_DIMENSION = _limit(MetricRollup, "name"), _limit(MetricRollup, "dimension")


def rollup_copy_chunks(rollups: list[tuple[Any, ...]], resolution: int) -> list[bytes]:
    """The COPY ... (FORMAT BINARY) stream of partial rollup rows.

    ``rollups``: ``(series, count, sum, min, max, errors, sketch)`` as
    :meth:`perfmonitor.capture.writer.Sink.rollups` gives them, the series being
    ``(kind, name, dimension, bucket start in Unix seconds)``. Counts are whole
    numbers (weights are), as the bigint columns take them.
    """
    names: dict[str, bytes] = {}
    dimensions: dict[str, bytes] = {}
    kinds: dict[str, bytes] = {}
    buckets: dict[int, bytes] = {}
    stored_resolution = _int4(4, resolution)
    out = [HEADER]
    for (kind, name, dimension, bucket), count, total, low, high, errors, sketch in rollups:
        start = buckets.get(bucket)
        if start is None:
            start = buckets[bucket] = timestamp_field(bucket)
        out.append(b"".join((
            _ROLLUP_ROW_START,
            _cached_text(kinds, kind, _R_KIND),
            _cached_text(names, name, _R_NAME),
            _cached_text(dimensions, dimension, _R_DIMENSION),
            # Sums keep infinity (a sum can overflow; float8 stores it), as text COPY did.
            start, stored_resolution, _int8(8, int(count)), _float8(8, total),
            _float8(8, low), _float8(8, high), _int8(8, int(errors)), _length(len(sketch)),
            sketch, _FALSE,
        )))
    out.append(TRAILER)
    return out
