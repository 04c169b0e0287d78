"""Turns a batch of records into raw rows and partial rollups and writes them.

PostgreSQL gets COPY (psycopg 3); other databases get ``bulk_create``. Writes go
to the database the host's router picks for perfmonitor's models, with capture
suppressed, so perfmonitor's own writes never show up as the host's queries.
The flusher's own PostgreSQL connection writes a batch part by part, each COPY
committing on its own (no BEGIN and COMMIT round trips); a failed batch is
retried from what is left of it, so no part is written twice. Elsewhere (a
caller's transaction, other databases) a batch is one transaction.

Rows are cleaned before they are written (:mod:`perfmonitor.capture.rows`):
NUL characters (PostgreSQL rejects them in text and JSON) are removed and
strings are cut to their column's length, so no request can produce a batch
the database refuses forever.

The flusher's cost is per record, so the work per record is kept to appends:
``Sink.measure`` appends a value to its series' list and ``Sink.row`` a field
dict to its table's list. Everything else happens once per batch: the
rollups' counts, sums and extremes per series and their sketches, all byte for
byte what adding value by value gives: in one compiled pass where
``perfmonitor.capture._speedups`` is built (series of plain finite floats without
weights: requests and queries), else for all series in a few numpy passes
(:func:`perfmonitor.analytics.sketch.encode_many`; a small batch, where numpy's
set-up would cost more, adds value by value); and on PostgreSQL the raw rows
encoded straight into COPY's binary format
(:func:`perfmonitor.capture.rows.binary_copy_chunks`), all of a batch's COPYs on one
psycopg cursor.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import reduce
from itertools import chain
from operator import add
from typing import Any

import numpy as np
from django.db import (
    InterfaceError,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.db.models import Model
from django.utils import timezone

from perfmonitor.analytics.sketch import (
    _LOG_2,
    _MIN_POSITIVE,
    _MULTIPLIER,
    QuantileSketch,
    compress,
    encode_many,
)
from perfmonitor.capture import query_hook
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.capture.fingerprint import FingerprintCache
from perfmonitor.capture.health_row import db_datetime, write_health  # noqa: F401  (API)
from perfmonitor.capture.rows import (
    COPY_COLUMNS,
    ROLLUP_COPY_COLUMNS,
    ROW_DEFAULTS,
    ROW_MODELS,
    binary_copy_chunks,
    clean_row,
    clean_text,
    rollup_copy_chunks,
)
from perfmonitor.conf import settings
from perfmonitor.ids import uuid7_hex_many
from perfmonitor.models import MetricRollup, QueryFingerprint

# The flusher runs beside request threads: holding the GIL through a whole batch
# would make each of them wait up to the 5 ms switch interval every time it wants
# it back. Every YIELD_AFTER_SECONDS of work it sleeps briefly, so a waiting
# request thread takes the GIL at once (sleep(0) may hand it straight back).
YIELD_AFTER_SECONDS = 0.001
YIELD_SLEEP_SECONDS = 0.00005
YIELD_CHECK_EVERY = 16  # records between two looks at the clock


class _Yielder:
    __slots__ = ("_since",)

    def __init__(self) -> None:
        self._since = time.perf_counter()

    def __call__(self) -> None:
        if time.perf_counter() - self._since >= YIELD_AFTER_SECONDS:
            if threading.active_count() > 1:  # alone (a command, a test): nobody to let in
                time.sleep(YIELD_SLEEP_SECONDS)
            self._since = time.perf_counter()

# A batch of at most this many values gets its sketches value by value: numpy's set-up,
# which a flush once a second always meets cold, costs more than it saves below this.
# Measured cold (benchmarks/overhead/flushcost.py, 10-query view): 213 against 433 µs
# for 11 values, 286 against 471 for 55, about even at 220, numpy ahead beyond.
SMALL_BATCH_VALUES = 128

# The compiled rollups of series without weights (Sink.rollups), where the request
# path is compiled (the same switch: query_hook.IMPLEMENTATION).
_series_rollups: Any = None
if query_hook.IMPLEMENTATION == "compiled":
    from perfmonitor.capture import _speedups  # type: ignore[attr-defined]

    _series_rollups = getattr(_speedups, "series_rollups", None)

SeriesKey = tuple[str, str, str, int]  # kind, name, dimension, bucket start (Unix seconds)
RawKey = tuple[str, str, str, float]  # as measured: the minute number, names uncut

_fingerprints = FingerprintCache()
_known_fingerprints: set[str] = set()
MAX_KNOWN_FINGERPRINTS = 100_000


def forget_known_fingerprints() -> None:
    _known_fingerprints.clear()


def is_connection_error(exc: BaseException) -> bool:
    """The database is away (retry later), as opposed to refusing this data."""
    return isinstance(exc, OperationalError | InterfaceError)


def _as_number(value: Any) -> float:
    if isinstance(value, str | bytes | bytearray):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


class Sink:
    """Collects what a batch of records expands into.

    ``measure`` only appends the value to its series' list; the weight (when not 1)
    and the error count are kept beside it. :meth:`rollups` computes count, sum,
    min, max and the sketch of every series once, when the batch is written.
    """

    __slots__ = ("values", "weights", "errors", "rows", "new_fingerprints", "_query_series")

    def __init__(self) -> None:
        self.values: dict[RawKey, list[float]] = {}
        self.weights: dict[RawKey, dict[int, float]] = {}  # series -> {position: weight}
        self.errors: dict[RawKey, float] = {}
        self.rows: dict[str, list[tuple[float, dict[str, Any]]]] = {"metric": [], "vital": []}
        self.new_fingerprints: dict[str, str] = {}
        # (dimension, minute) -> {statement: (fingerprint, its series' value list)}
        self._query_series: dict[tuple[str, float], dict[str, tuple[str, list[float]]]] = {}

    def measure(self, kind: str, name: str, dimension: str, value: float, error: bool,
                ts: float, weight: float = 1) -> None:
        if value.__class__ is not float:
            value = _as_number(value)  # a bad value fails its record here, not the batch
        # The minute as a float and names as given: the cheapest key. _series()
        # turns it into the stored series (bucket start, names cut to 255).
        key = (kind, name, dimension, ts // 60)
        values = self.values.get(key)
        if values is None:
            values = self.values[key] = []
        if error or weight != 1:
            if value - value != 0.0:  # NaN / infinity would poison every aggregate
                return
            if weight != 1:
                self.weights.setdefault(key, {})[len(values)] = weight
            if error:
                self.errors[key] = self.errors.get(key, 0) + weight
        # Other non-finite values are appended and left out in bulk by rollups().
        values.append(value)

    def measure_queries(self, queries: Iterable[tuple[str, float, bool]], dimension: str,
                        ts: float, slow_ms: float) -> tuple[list[str], bool]:
        """``measure("query", fingerprint, dimension, ms, failed, ts)`` for every query.

        Returns the queries' fingerprints in order and whether one was slow. The flusher's
        commonest work: a statement seen before in this batch, for the same origin and
        minute, costs a dict lookup and an append (no fingerprint, no series key).
        """
        minute = ts // 60
        table = self._query_series.get((dimension, minute))
        if table is None:
            table = self._query_series[(dimension, minute)] = {}
        fps = []
        any_slow = False
        for sql, ms, failed in queries:
            entry = table.get(sql)
            if entry is not None and not failed and ms.__class__ is float:
                fp = entry[0]
                entry[1].append(ms)
            else:
                fp = self.fingerprint(sql)[0]
                self.measure("query", fp, dimension, ms, failed, ts)
                if entry is None:
                    table[sql] = (fp, self.values[("query", fp, dimension, minute)])
            fps.append(fp)
            if ms >= slow_ms:
                any_slow = True
        return fps, any_slow

    def extend(self, kind: str, name: str, dimension: str, minute: float,
               values: Iterable[float]) -> None:
        """``measure`` of finite values, no error, weight 1, all in one minute (ts // 60)."""
        self.values.setdefault((kind, name, dimension, minute), []).extend(values)

    def extend_queries(self, sqls: Sequence[str], times: Sequence[Iterable[float]],
                       dimension: str, minute: float) -> None:
        """``extend`` for each statement's query series: sqls[i] ran times[i]."""
        table = self._query_series.get((dimension, minute))
        if table is None:
            table = self._query_series[(dimension, minute)] = {}
        for sql, values in zip(sqls, times, strict=True):
            entry = table.get(sql)
            if entry is None:
                fp = self.fingerprint(sql)[0]
                series = self.values.setdefault(("query", fp, dimension, minute), [])
                entry = table[sql] = (fp, series)
            entry[1].extend(values)

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

    def rollups(self) -> list[tuple[SeriesKey, Any, float, float, float, Any, bytes]]:
        """(series, count, sum, min, max, errors, sketch) of every series with a value.

        Identical to accumulating value by value in call order: sums add in that
        order, min and max keep the first of equal values, sketches come out byte
        for byte the same. Non-finite values count nowhere.

        Where the request path is compiled, so is this for every series of plain
        finite floats without weights (``_speedups.series_rollups``: the whole
        batch in one C pass, where numpy's set-up, met cold once a second, cost
        more than the work); the others, and every series elsewhere, go below.
        """
        keys, lists, weight_maps, error_counts = self._series()
        if not keys:
            return []
        done: list[Any] = [None] * len(keys)
        if _series_rollups is not None:
            compiled = _series_rollups(lists, _MULTIPLIER, _LOG_2, _MIN_POSITIVE)
            for at, (result, weights) in enumerate(zip(compiled, weight_maps, strict=True)):
                if result is not None and weights is None:
                    payload, *stats = result
                    done[at] = (*stats, compress(payload))
        rest = [at for at, result in enumerate(done) if result is None]
        if rest:
            for at, result in zip(rest, _rollups_in_python([lists[at] for at in rest],
                                                           [weight_maps[at] for at in rest]),
                                  strict=True):
                done[at] = result
        return [(key, *result[:4], errors, result[4])
                for key, result, errors in zip(keys, done, error_counts, strict=True)
                if result is not _NOTHING]

    def _series(self) -> tuple[list[SeriesKey], list[list[float]],
                               list[dict[int, float] | None], list[Any]]:
        """(series, values, weights by position, errors) of every series with values.

        Keys become stored series here: the bucket's start in seconds and names cut
        to their column. Names that only differ past the cut are one series, their
        values joined in the order their series first appeared.
        """
        keys: list[SeriesKey] = []
        lists: list[list[float]] = []
        weight_maps: list[dict[int, float] | None] = []
        error_counts: list[Any] = []
        index: dict[SeriesKey, int] = {}
        for (kind, name, dimension, minute), values in self.values.items():
            if not values:
                continue
            raw = (kind, name, dimension, minute)
            key = (kind, name[:255], dimension[:255], int(minute) * 60)
            weights = self.weights.get(raw)
            errors = self.errors.get(raw, 0)
            at = index.get(key)
            if at is None:
                index[key] = len(keys)
                keys.append(key)
                lists.append(values)
                weight_maps.append(weights)
                error_counts.append(errors)
                continue
            offset = len(lists[at])  # a name cut to the same series: join them
            joined = dict(weight_maps[at] or {})
            joined.update({offset + position: w for position, w in (weights or {}).items()})
            lists[at] = lists[at] + values
            weight_maps[at] = joined or None
            error_counts[at] += errors
        return keys, lists, weight_maps, error_counts


_NOTHING = ()  # a series none of whose values is finite: no rollup


def _rollups_in_python(lists: list[list[float]], weight_maps: list[dict[int, float] | None],
                       ) -> list[Any]:
    """(count, sum, min, max, sketch) of each series, or _NOTHING (see Sink.rollups)."""
    lengths = [len(values) for values in lists]
    total = sum(lengths)
    if total <= SMALL_BATCH_VALUES:
        sketches = [_sketch_by_value(values, weights)
                    for values, weights in zip(lists, weight_maps, strict=True)]
        all_finite = all(value - value == 0.0 for values in lists for value in values)
    else:
        flat = np.fromiter(chain.from_iterable(lists), dtype=np.float64, count=total)
        owners = np.repeat(np.arange(len(lists), dtype=np.int64), lengths)
        any_weights = any(weights for weights in weight_maps)
        weights = _weight_array(weight_maps, lengths) if any_weights else None
        finite = np.isfinite(flat)
        all_finite = bool(finite.all())
        if not all_finite:
            flat, owners = flat[finite], owners[finite]
            weights = None if weights is None else weights[finite]
        sketches = encode_many(owners, flat, weights, len(lists))
    out: list[Any] = []
    for values, series_weights, sketch in zip(lists, weight_maps, sketches, strict=True):
        if all_finite and series_weights is None:
            stats = (len(values), reduce(add, values, 0.0), min(values), max(values))
        else:
            found = _weighted_stats(values, series_weights or {})
            if found is None:
                out.append(_NOTHING)
                continue
            stats = found
        out.append((*stats, sketch))
    return out


def _sketch_by_value(values: list[float], weights: dict[int, float] | None) -> bytes:
    """A series' sketch built value by value (the reference ``encode_many`` is held to)."""
    sketch = QuantileSketch()
    if weights is None:
        sketch.add_many([value for value in values if value - value == 0.0])
    else:
        for position, value in enumerate(values):
            if value - value == 0.0:
                sketch.add(value, weights.get(position, 1))
    return sketch.to_bytes()


def _weight_array(weight_maps: list[dict[int, float] | None], lengths: list[int]) -> np.ndarray:
    weights = np.ones(sum(lengths), dtype=np.float64)
    start = 0
    for positions, length in zip(weight_maps, lengths, strict=True):
        for position, weight in (positions or {}).items():
            weights[start + position] = weight
        start += length
    return weights


def _weighted_stats(values: list[float], weights: dict[int, float],
                    ) -> tuple[Any, float, float, float] | None:
    """(count, sum, min, max) over the finite values, value by value; None if there are none."""
    count: Any = 0
    total = 0.0
    low, high = math.inf, -math.inf
    seen = False
    for position, value in enumerate(values):
        if value - value != 0.0:
            continue
        weight = weights.get(position, 1)
        seen = True
        count += weight
        total += value * weight
        if value < low:
            low = value
        if value > high:
            high = value
    return (count, total, low, high) if seen else None


def expand_records(records: Iterable[Any]) -> tuple[Sink, list[Any], int]:
    """Expand records into a Sink: (sink, records that expanded, how many failed).

    The requests the middleware pushed as plain tuples go first, together
    (:func:`~perfmonitor.capture.records.expand_requests`); what they leave, and every
    other record, one by one.
    """
    sink = Sink()
    good = []
    failures = 0
    from perfmonitor.capture.records import STANDALONE_FIELDS, expand_plain, expand_requests

    let_requests_in = _Yielder()
    requests = []
    others = []
    for record in records:
        if type(record) is tuple and len(record) != STANDALONE_FIELDS:
            requests.append(record)
        else:
            others.append(record)
    if requests:
        left, failed = expand_requests(requests, sink, let_requests_in)
        failures += len(failed)
        if not (left or failed):
            good = requests
        elif len(left) + len(failed) < len(requests):
            apart = {id(record) for record in chain(left, failed)}
            good = [record for record in requests if id(record) not in apart]
        others = left + others
    for n, record in enumerate(others, 1):
        try:
            if type(record) is tuple:  # a request or a stray query, as the hooks push them
                expand_plain(record, sink)
            else:
                record.expand(sink)
        except Exception:
            failures += 1
        else:
            good.append(record)
        if not n % YIELD_CHECK_EVERY:
            let_requests_in()
    return sink, good, failures


def expand(records: Iterable[Any]) -> tuple[Sink, int]:
    """Expand records into a Sink; bad records are skipped and counted, never raised."""
    sink, _, failures = expand_records(records)
    return sink, failures


# -- prepared batches ------------------------------------------------------------

class Prepared:
    """A Sink made ready to write on one database: built once, written (or retried) as is.

    On PostgreSQL outside a transaction each part (a table's raw rows, the rollups, new
    fingerprints) commits on its own and is then removed from here: a retry of the same
    Prepared writes only what is left, never a part twice.
    """

    __slots__ = ("alias", "vendor", "rollups", "rollup_count", "raw", "new_fingerprints",
                 "row_count")

    def __init__(self, alias: str, vendor: str, rollups: list[Any], rollup_count: int,
                 raw: dict[str, Any], new_fingerprints: dict[str, str], row_count: int) -> None:
        self.alias = alias
        self.vendor = vendor
        self.rollups = rollups  # binary COPY chunks (PostgreSQL) or row dicts
        self.rollup_count = rollup_count
        self.raw = raw  # binary COPY chunks (PostgreSQL) or cleaned row dicts, per table
        self.new_fingerprints = new_fingerprints
        self.row_count = row_count


def _rollup_rows(sink: Sink) -> list[dict[str, Any]]:
    rows = []
    buckets: dict[int, datetime] = {}
    for (kind, name, dimension, bucket), count, total, low, high, errors, sketch in sink.rollups():
        start = buckets.get(bucket)
        if start is None:
            start = buckets[bucket] = db_datetime(bucket)
        rows.append({
            "kind": kind, "name": clean_text(name), "dimension": clean_text(dimension),
            "bucket_start": start, "resolution": MetricRollup.MINUTE,
            "count": count, "sum": total, "min": low, "max": high, "errors": errors,
            "sketch": sketch, "compacted": False,
        })
    return rows


def _raw_rows(sink: Sink, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Cleaned row dicts, for ``bulk_create``."""
    out: dict[str, list[dict[str, Any]]] = {}
    dates: dict[float, datetime] = {}
    for model, items in sink.rows.items():
        defaults = ROW_DEFAULTS[model]
        ids = uuid7_hex_many([int(ts * 1000) for ts, _ in items])
        built = []
        for (ts, fields), uid in zip(items, ids, strict=True):
            row = clean_row(model, {**defaults, **fields})
            row["id"] = uid
            moment = dates.get(ts)
            if moment is None:
                moment = dates[ts] = db_datetime(ts)
            row["timestamp"] = moment
            row["created_at"] = now
            built.append(row)
        out[model] = built
    return out


def prepare(sink: Sink, alias: str | None = None) -> Prepared:
    """Rollups and raw rows of a Sink, in the form the database behind ``alias`` takes
    (by default the one the host's router picks for perfmonitor's writes)."""
    if alias is None:
        alias = router.db_for_write(MetricRollup)
    vendor = connections[alias].vendor
    raw: dict[str, Any]
    rollups: list[Any]
    if vendor == "postgresql":
        series = sink.rollups()
        count = len(series)
        rollups = rollup_copy_chunks(series, MetricRollup.MINUTE) if series else []
        created = time.time()
        raw = {model: binary_copy_chunks(model, items, created, _Yielder())
               for model, items in sink.rows.items() if items}
    else:
        rollups = _rollup_rows(sink)
        count = len(rollups)
        raw = {model: rows for model, rows in _raw_rows(sink, timezone.now()).items() if rows}
    return Prepared(alias, vendor, rollups, count, raw, dict(sink.new_fingerprints),
                    sink.row_count)


_copy_statements: dict[tuple[str, str, tuple[str, ...], bool], str] = {}


def _copy_statement(connection: Any, model: type[Model], columns: Iterable[str],
                    binary: bool = False) -> str:
    """``COPY table (columns) FROM STDIN``; built once per database, table and columns."""
    columns = tuple(columns)
    key = (connection.alias, model._meta.label, columns, binary)
    statement = _copy_statements.get(key)
    if statement is None:
        statement = _copy_statements[key] = _build_copy_statement(connection, model, columns,
                                                                  binary)
    return statement


def _build_copy_statement(connection: Any, model: type[Model], columns: tuple[str, ...],
                          binary: bool) -> str:
    fields = {f.attname: f for f in model._meta.concrete_fields}
    names = ", ".join(connection.ops.quote_name(fields[name].column) for name in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    return f"COPY {table} ({names}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")


_COPY_WRITE_BYTES = 128 * 1024  # psycopg's own largest single write


def _copy_binary(cursor: Any, statement: str, chunks: list[bytes]) -> None:
    """One COPY of the chunks, handed to psycopg joined in writes of up to 128 KiB.

    psycopg passes every ``write()`` of binary data on to libpq at once, each through
    its wait loop: a rollup row per write made a flush's COPY a dozen such calls.
    """
    with cursor.copy(statement) as copy:
        pending: list[bytes] = []
        size = 0
        for chunk in chunks:
            if pending and size + len(chunk) > _COPY_WRITE_BYTES:
                copy.write(b"".join(pending))
                pending, size = [], 0
            pending.append(chunk)
            size += len(chunk)
        if pending:
            copy.write(b"".join(pending) if len(pending) > 1 else pending[0])


def _copy_raw(connection: Any, cursor: Any, model_key: str, chunks: list[bytes]) -> None:
    _copy_binary(cursor, _copy_statement(connection, ROW_MODELS[model_key],
                                         COPY_COLUMNS[model_key], binary=True), chunks)


def _copy_rollups(connection: Any, cursor: Any, chunks: list[bytes]) -> None:
    _copy_binary(cursor, _copy_statement(connection, MetricRollup, ROLLUP_COPY_COLUMNS,
                                         binary=True), chunks)


def _psycopg_cursor(connection: Any) -> Any:
    """One psycopg cursor for all of a batch's COPYs. COPY runs on psycopg's own cursor
    anyway; Django's wrapper around it, one per statement, would only add its set-up.
    Call inside ``connection.wrap_database_errors``."""
    connection.ensure_connection()
    return connection.connection.cursor()


def _write_postgresql(connection: Any, prepared: Prepared) -> None:
    # The raw psycopg cursor bypasses Django's error translation: restore it, so
    # a lost connection is an OperationalError like everywhere else.
    with connection.wrap_database_errors, _psycopg_cursor(connection) as cursor:
        for model_key, chunks in prepared.raw.items():
            _copy_raw(connection, cursor, model_key, chunks)
        if prepared.rollups:
            _copy_rollups(connection, cursor, prepared.rollups)


def _write_postgresql_parts(connection: Any, prepared: Prepared) -> None:
    """Each part in its own autocommitted statement, dropped from ``prepared`` once written.

    A COPY is atomic by itself, so a part is either all in or not at all. Without
    BEGIN and COMMIT the flush makes two round trips fewer, and the flusher's
    session does less work per flush.
    """
    with connection.wrap_database_errors, _psycopg_cursor(connection) as cursor:
        for model_key in list(prepared.raw):
            _copy_raw(connection, cursor, model_key, prepared.raw[model_key])
            del prepared.raw[model_key]
        if prepared.rollups:
            _copy_rollups(connection, cursor, prepared.rollups)
            prepared.rollups = []
    _insert_fingerprints(prepared)
    prepared.new_fingerprints = {}


def _write_other(alias: str, prepared: Prepared) -> None:
    for model_key, rows in prepared.raw.items():
        model = ROW_MODELS[model_key]
        model._default_manager.using(alias).bulk_create([model(**row) for row in rows],
                                                        batch_size=500)
    if prepared.rollups:
        MetricRollup._default_manager.using(alias).bulk_create(
            [MetricRollup(**row) for row in prepared.rollups], batch_size=500)


def _insert_fingerprints(prepared: Prepared) -> None:
    if prepared.new_fingerprints:  # a conflict means another process stored it first
        QueryFingerprint.objects.using(prepared.alias).bulk_create(
            [QueryFingerprint(fingerprint=fp, sql=clean_text(sql))
             for fp, sql in prepared.new_fingerprints.items()],
            ignore_conflicts=True, batch_size=500)


def write_prepared(prepared: Prepared, alias: str | None = None) -> int:
    """Write a prepared batch; return the number of rows it holds.

    On PostgreSQL in autocommit mode (the flusher's own connection) part by part, each
    committing on its own (see :func:`_write_postgresql_parts`); inside a caller's
    transaction, and on other databases, in one transaction (a savepoint when nested).
    """
    alias = prepared.alias if alias is None else alias
    connection = connections[alias]
    fingerprints = dict(prepared.new_fingerprints)
    with capture_suppressed():
        if prepared.vendor == "postgresql" and not connection.in_atomic_block \
                and connection.get_autocommit():
            _write_postgresql_parts(connection, prepared)
        else:
            with transaction.atomic(using=alias):
                if prepared.vendor == "postgresql":
                    _write_postgresql(connection, prepared)
                else:
                    _write_other(alias, prepared)
                _insert_fingerprints(prepared)
    if len(_known_fingerprints) > MAX_KNOWN_FINGERPRINTS:
        _known_fingerprints.clear()
    _known_fingerprints.update(fingerprints)
    return prepared.row_count + prepared.rollup_count


def _discard_connection(connection: Any) -> None:
    if connection.in_atomic_block:  # a caller's transaction (flush_now in a test): keep it
        return
    with contextlib.suppress(Exception):
        connection.close()


def _commit_asynchronously(connection: Any) -> None:
    """``SET synchronous_commit TO off`` on the flusher's own connection, once per session.

    Monitoring data can afford what PostgreSQL's asynchronous commit risks: a
    database crash loses at most the last few hundred milliseconds of committed
    flushes (three times ``wal_writer_delay``), never consistency. The commit no
    longer waits for its WAL flush, and the WAL writer syncs several commits at
    once. Only this connection: the host's sessions are never touched.
    """
    if settings.FLUSH_SYNCHRONOUS_COMMIT or connection.vendor != "postgresql":
        return
    connection.ensure_connection()
    session = connection.connection
    if _async_sessions.get(connection) is session:
        return
    with capture_suppressed(), connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    _async_sessions[connection] = session


_async_sessions: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def write(sink: Sink, own_connection: bool = False) -> int:
    """Write everything in the sink; return the number of rows written.

    ``own_connection``: the calling thread's connection is the flusher's own (not a
    request's, a command's or a test's), so its session may be tuned for it.
    """
    return write_batch(prepare(sink), own_connection)


def write_batch(prepared: Prepared, own_connection: bool = False) -> int:
    """Write a prepared batch (see :func:`write`). If it fails, what is left of it can be
    given to this again: parts already committed are not written twice."""
    connection = connections[prepared.alias]
    reused = connection.connection is not None

    def attempt() -> int:
        if own_connection:
            _commit_asynchronously(connection)  # a new session needs it again
        return write_prepared(prepared)

    try:
        return attempt()
    except Exception as exc:
        _discard_connection(connection)
        if not (reused and is_connection_error(exc)):
            raise
    # The kept-open connection was dead (server restart, idle timeout): one
    # fresh try before this counts as a failed flush.
    try:
        return attempt()
    except Exception:
        _discard_connection(connection)
        raise
