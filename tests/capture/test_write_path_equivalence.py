"""The bulk write path stores exactly what adding value by value and cleaning row by row
stored: same rollup counts, sums, extremes and sketches, same raw row contents."""

from __future__ import annotations

import math
import random
import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection

from perfmonitor.analytics.sketch import (
    _MAPPING,
    QuantileSketch,
    bulk_keys,
    encode_many,
)
from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture import writer
from perfmonitor.capture.records import Measurement, RequestRecord
from perfmonitor.capture.rows import (
    COPY_COLUMNS,
    ROLLUP_COPY_COLUMNS,
    ROW_DEFAULTS,
    ROW_MODELS,
    clean_row,
    microseconds,
)
from perfmonitor.capture.writer import Sink, db_datetime
from perfmonitor.ids import uuid7, uuid7_hex_many
from perfmonitor.models import MetricRollup, PerformanceMetric, WebVital

TS = 1_700_000_017.25


class ReferencePartial:
    """What a rollup held when every value was accumulated as it came."""

    def __init__(self) -> None:
        self.count, self.sum, self.errors = 0, 0.0, 0
        self.min, self.max = math.inf, -math.inf
        self.sketch = QuantileSketch()

    def add(self, value: float, error: bool, weight: float) -> None:
        if not math.isfinite(value):
            return
        self.count += weight
        self.sum += value * weight
        self.min, self.max = min(self.min, value), max(self.max, value)
        if error:
            self.errors += weight
        self.sketch.add(value, weight)


def mixed_measurements(rng: random.Random) -> list[tuple]:
    names = ["GET /a/", "GET /b/", "x" * 300, "nul\x00name", "q:1", "q:2"]
    out = []
    for i in range(6000):
        value = rng.choice([
            rng.lognormvariate(3, 1.5), rng.lognormvariate(3, 1.5), 0.0, 1.0, -2.0, 1e-320,
            1e300, float("nan"), float("inf"), float(rng.randint(0, 5000)), 0.1 + 0.2,
        ])
        weight = rng.choice([1, 1, 1, 1, 7, 0]) if i % 3 == 0 else 1
        out.append(("query" if i % 2 else "request", rng.choice(names),
                    rng.choice(["", "GET", "d" * 280]), value, rng.random() < 0.1,
                    TS + rng.uniform(-120, 120), weight))
    out.append(("custom", "only-nan", "", float("nan"), False, TS, 1))  # no row at all
    out.append(("custom", "only-nan-error", "", float("inf"), True, TS, 3))
    return out


@pytest.fixture(params=["compiled", "python"])
def rollups_path(request, monkeypatch):
    """Sink.rollups() with the compiled series (where built) and without."""
    if request.param == "compiled" and writer._series_rollups is None:
        pytest.skip("perfmonitor.capture._speedups not built, or PERFMONITOR_PURE_PYTHON")
    if request.param == "python":
        monkeypatch.setattr(writer, "_series_rollups", None)
    return request.param


@pytest.mark.parametrize("size", [6000, 40], ids=["numpy", "value-by-value"])
def test_rollups_equal_value_by_value_accumulation(size, rollups_path):
    """Every way of building sketches: compiled for series of plain finite floats without
    weights, numpy for a batch of many values, one by one for a batch of at most
    SMALL_BATCH_VALUES."""
    sink = Sink()
    reference: dict[tuple, ReferencePartial] = {}
    measurements = mixed_measurements(random.Random(5))
    if size < len(measurements):  # keep the odd ones: every kind of value and weight
        measurements = measurements[:size - 2] + measurements[-2:]
    assert (size <= writer.SMALL_BATCH_VALUES) == (len(measurements) <= writer.SMALL_BATCH_VALUES)
    for kind, name, dimension, value, error, ts, weight in measurements:
        sink.measure(kind, name, dimension, value, error, ts, weight)
        key = (kind, name[:255], dimension[:255], int(ts // 60) * 60)
        if math.isfinite(value):
            reference.setdefault(key, ReferencePartial()).add(value, error, weight)

    got = {key: rest for key, *rest in sink.rollups()}
    assert got.keys() == reference.keys()
    for key, ref in reference.items():
        count, total, low, high, errors, sketch = got[key]
        assert (count, total, low, high, errors) == (ref.count, ref.sum, ref.min, ref.max,
                                                    ref.errors), key
        assert sketch == ref.sketch.to_bytes(), key
        assert QuantileSketch.from_bytes(sketch).quantiles((0.5, 0.99)) == \
            ref.sketch.quantiles((0.5, 0.99))


def test_a_small_batch_and_a_large_one_store_the_same_rollups(monkeypatch):
    """The value-by-value sketches of a small batch are byte for byte numpy's."""
    measurements = mixed_measurements(random.Random(11))[:100] + \
        mixed_measurements(random.Random(5))[-2:]

    def rollups(threshold: int) -> list[tuple]:
        monkeypatch.setattr(writer, "SMALL_BATCH_VALUES", threshold)
        sink = Sink()
        for kind, name, dimension, value, error, ts, weight in measurements:
            sink.measure(kind, name, dimension, value, error, ts, weight)
        return sink.rollups()

    by_value, by_numpy = rollups(10**9), rollups(0)
    assert by_value == by_numpy
    assert len(by_value) > 10 and any(row[1] != int(row[1]) or row[1] > 1 for row in by_value)


def test_the_compiled_rollups_are_the_python_ones(monkeypatch):
    if writer._series_rollups is None:
        pytest.skip("perfmonitor.capture._speedups not built, or PERFMONITOR_PURE_PYTHON")
    rng = random.Random(3)
    sink = Sink()
    for value in boundary_values():  # one series of every bucket edge
        sink.measure("query", "edges", "", value, False, TS)
    for i in range(3000):  # plain series, and series with what C leaves to Python
        value = rng.choice([rng.lognormvariate(2, 2), 0.0, -0.0, -3.5, 1e-320, 5e-324, 1.0])
        sink.measure("request", f"route{i % 7}", "", value, False, TS + i % 3 * 60)
    sink.measure("custom", "weighted", "", 4.0, False, TS, 3)
    sink.measure("custom", "weighted", "", 5.0, False, TS)
    sink.measure("custom", "nan", "", float("nan"), True, TS)
    sink.measure("custom", "nan", "", 2.0, False, TS)
    sink.extend("custom", "ints", "", TS // 60, [1, 2, 3])  # not floats: Python's
    compiled = sink.rollups()
    monkeypatch.setattr(writer, "_series_rollups", None)
    python = sink.rollups()
    assert [repr(row) for row in compiled] == [repr(row) for row in python]  # -0.0 too
    assert len(compiled) == 1 + 7 * 3 + 3


def test_the_compiled_series_rollups_refuse_what_they_cannot_do():
    if writer._series_rollups is None:
        pytest.skip("perfmonitor.capture._speedups not built, or PERFMONITOR_PURE_PYTHON")
    from perfmonitor.analytics.sketch import _LOG_2, _MIN_POSITIVE, _MULTIPLIER

    done = writer._series_rollups(
        [[1.0, 2.0], [], [1.0, float("inf")], [float("nan")], [1, 2.0], [2.0, 0.0, 2.0]],
        _MULTIPLIER, _LOG_2, _MIN_POSITIVE)
    assert done[1:5] == [None, None, None, None]
    payload, count, total, low, high = done[5]
    reference = QuantileSketch()
    reference.add_many([2.0, 0.0, 2.0])
    assert zlib.decompress(reference.to_bytes()) == payload
    assert (count, total, low, high) == (3, 4.0, 0.0, 2.0)
    with pytest.raises(TypeError):
        writer._series_rollups("not a list", _MULTIPLIER, _LOG_2, _MIN_POSITIVE)
    with pytest.raises(TypeError):
        writer._series_rollups([[1.0]], "x", _LOG_2, _MIN_POSITIVE)


def test_a_value_that_is_not_a_number_fails_its_record_not_the_batch():
    good = Measurement(kind="custom", name="fine", value=2.0, ts=TS)
    bad = Measurement(kind="custom", name="bad", value="12", ts=TS)  # type: ignore[arg-type]
    sink, kept, failures = writer.expand_records([good, bad])
    assert failures == 1 and kept == [good]
    assert [key[1] for key, *_ in sink.rollups()] == ["fine"]


def boundary_values() -> list[float]:
    """Values on and next to bucket boundaries, and the extremes of the mapping."""
    values = [1.0, 2.0, 0.5, 1e-300, 1e300, 1.7976931348623157e308, _MAPPING.min_possible * 1.5]
    for key in range(-3000, 3000, 7):
        edge = 2.0 ** (key / _MAPPING._multiplier)  # where ceil() changes bucket
        values += [edge, np.nextafter(edge, 0.0), np.nextafter(edge, np.inf)]
    return [v for v in values if v > _MAPPING.min_possible]


def test_bulk_keys_equal_the_mappings_keys_at_bucket_edges():
    values = boundary_values()
    keys = bulk_keys(np.array(values)).tolist()
    assert keys == [_MAPPING.key(v) for v in values]
    rng = np.random.default_rng(9)
    spread = np.exp(rng.uniform(-60, 60, 20_000))
    assert bulk_keys(spread).tolist() == [_MAPPING.key(v) for v in spread.tolist()]


def test_sketches_built_in_bulk_are_the_sketches_built_one_by_one():
    rng = random.Random(3)
    owners, values, weights = [], [], []
    for _ in range(5000):
        owners.append(rng.randrange(40))
        values.append(rng.choice([0.0, -1.0, 1.0, rng.lognormvariate(2, 3), 1e-310]))
        weights.append(rng.choice([1, 1, 2, 0]))
    owners.append(41)  # an owner with only fractional weight: counts as doubles
    values.append(5.0)
    weights.append(0.5)
    expected = [QuantileSketch() for _ in range(43)]  # owner 40 and 42: empty
    for owner, value, weight in zip(owners, values, weights, strict=True):
        expected[owner].add(value, weight)
    blobs = encode_many(np.array(owners), np.array(values), np.array(weights, dtype=float), 43)
    assert blobs == [sketch.to_bytes() for sketch in expected]


def odd_fields(i: int) -> dict:
    return {
        "session_id": f"s{i}\x00\t\\", "user_id": "u" * 80, "metric_type": "custom",
        "metric_name": f"n{i:04d}" + "m" * 300, "duration": [1.5, float("nan"), 7, None][i % 4],
        "url": f"/path/{i}\nnext\rline\\x", "error_details": None if i % 2 else {"a\x00": [1]},
        "metadata": {"i": i, "text": "tab\there \\ \"quoted\" ünï", "nul": "a\x00b",
                     "nan": float("nan") if i % 5 == 0 else 1.0, "nested": {"x": [1, 2.5]},
                     "literal": "\\u0000 is six characters"},
    }


def expected_metric(i: int, ts: float) -> dict:
    """The row as the row-by-row cleaning stored it."""
    row = clean_row("metric", {**ROW_DEFAULTS["metric"], **odd_fields(i)})
    row["timestamp"] = db_datetime(ts)
    return row


@pytest.mark.django_db
def test_raw_rows_are_stored_as_row_by_row_cleaning_stored_them(flush):
    rng = random.Random(1)
    stamps = [TS + rng.uniform(0, 3) for _ in range(60)] + [1_700_000_000.0000005,
                                                             1_700_000_000.9999996]
    sink_rows = []
    for i, ts in enumerate(stamps):
        fields = odd_fields(i)
        sink_rows.append((i, ts))
        buffer_module.push(Measurement(kind="custom", name="odd", value=1.0, ts=ts,
                                       row_model="metric", row=fields))
    buffer_module.push(Measurement(kind="vital", name="LCP", value=1830.5, ts=TS,
                                   row_model="vital", row={"metric_name": "LCP", "value": 1830.5,
                                                           "rating": "good", "url": "/p/\t"}))
    flush()
    assert buffer_module.buffer.flush_errors == 0
    stored = {row.metric_name[:5]: row for row in PerformanceMetric.objects.all()}
    assert len(stored) == len(stamps)
    for i, ts in sink_rows:
        want = expected_metric(i, ts)
        row = stored[f"n{i:04d}"]
        for name in ("session_id", "user_id", "metric_type", "metric_name", "duration", "url",
                     "metadata", "error_details", "timestamp"):
            assert getattr(row, name) == want[name], (i, name)
        assert row.id.version == 7 and int(row.id.int >> 80) == int(ts * 1000)
    vital = WebVital.objects.get()
    assert (vital.metric_name, vital.value, vital.rating, vital.url, vital.metadata) == \
        ("LCP", 1830.5, "good", "/p/\t", {})


@pytest.mark.django_db
def test_rollups_stored_equal_value_by_value_accumulation(flush):
    rng = random.Random(8)
    reference: dict[tuple, ReferencePartial] = {}
    for i in range(3000):
        record = RequestRecord(
            method="GET", route=f"/r{i % 7}/", view="v", path="/r/", query_string="",
            status=500 if i % 50 == 0 else 200, ts=1_700_000_040.0 + i * 0.01,
            duration_ms=rng.lognormvariate(3, 1), queries=[], overflow={})
        buffer_module.push(record)
        key = ("request", record.route, "GET")
        reference.setdefault(key, ReferencePartial()).add(record.duration_ms, record.error, 1)
    flush()
    for key, ref in reference.items():
        kind, name, dimension = key
        rows = MetricRollup.objects.filter(kind=kind, name=name, dimension=dimension)
        merged = [(r.count, r.sum, r.min, r.max, r.errors) for r in rows]
        assert len(merged) == 1  # all within one minute
        assert merged[0] == (ref.count, ref.sum, ref.min, ref.max, ref.errors)
        assert bytes(rows[0].sketch) == ref.sketch.to_bytes()


def test_copy_columns_cover_every_column_of_the_raw_tables():
    for key, model in ROW_MODELS.items():
        assert set(COPY_COLUMNS[key]) == {f.attname for f in model._meta.concrete_fields}
        assert len(COPY_COLUMNS[key]) == len(set(COPY_COLUMNS[key]))


def test_rollup_copy_columns_are_every_column_but_the_id():
    assert set(ROLLUP_COPY_COLUMNS) == {f.attname for f in MetricRollup._meta.concrete_fields
                                        if not f.primary_key}


@pytest.mark.django_db
@pytest.mark.parametrize("write_bytes", [1, 700, writer._COPY_WRITE_BYTES])
def test_rollup_rows_read_back_as_the_sink_made_them(flush, monkeypatch, write_bytes):
    """Odd names, an overflowing sum, negatives, only-error series: every column as computed,
    whether the COPY's rows reach psycopg one per write, a few per write or all in one."""
    monkeypatch.setattr(writer, "_COPY_WRITE_BYTES", write_bytes)
    sink = Sink()
    names = ["GET /a/\t\\ ünï", "nul\x00name", "n" * 300, "plain"]
    for i in range(400):
        sink.measure("custom", names[i % 4], ["", "d\x00", "x" * 300][i % 3],
                     [1e308, -2.5, 0.0, 12.75][i % 4], i % 7 == 0, TS + (i % 3) * 60)
    expected = {}
    for (kind, name, dimension, bucket), count, total, low, high, errors, sketch in sink.rollups():
        key = (kind, name.replace("\x00", ""), dimension.replace("\x00", ""), db_datetime(bucket))
        expected[key] = (count, total, low, high, errors, sketch)
    assert any(math.isinf(v[1]) for v in expected.values())  # a sum past the largest float
    assert writer.write(sink) == len(expected)
    stored = {(r.kind, r.name, r.dimension, r.bucket_start):
              (r.count, r.sum, r.min, r.max, r.errors, bytes(r.sketch))
              for r in MetricRollup.objects.all()}
    assert stored == expected
    assert set(MetricRollup.objects.values_list("resolution", "compacted")) == \
        {(MetricRollup.MINUTE, False)}


def test_copy_timestamps_are_the_datetimes_django_stores():
    rng = random.Random(4)
    moments = [1_700_000_000 + rng.random() * 1e6 for _ in range(3000)]
    moments += [1_700_000_000.0000005, 1_700_000_000.0000015, 1_700_000_000.9999995,
                1_700_000_000.9999999, 0.0, 946_684_800.5]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for ts in moments:
        moment = datetime.fromtimestamp(ts, tz=UTC)
        assert microseconds(ts) == (moment - epoch) // timedelta(microseconds=1), ts


@pytest.mark.parametrize("n", [1, 3, 16, 17, 100])  # few ids are built without numpy
def test_bulk_ids_are_time_ordered_version_7(n):
    import uuid

    ms = [1_700_000_000_000 + i for i in range(n)]
    ids = [uuid.UUID(hex=h) for h in uuid7_hex_many(ms)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert [u.int >> 80 for u in ids] == ms
    assert len(set(ids)) == n
    assert uuid7_hex_many([]) == []
    one = uuid7(ms[0])  # the models' default: the same layout, one at a time
    assert (one.version, one.variant, one.int >> 80) == (7, uuid.RFC_4122, ms[0])


@pytest.mark.django_db
def test_postgresql_gets_binary_copy(flush):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only: runs in the PostgreSQL pass (DATABASE_URL)")
    sink = Sink()
    for i in range(2500):  # several chunks
        sink.row("metric", TS + i, {"metric_type": "custom", "metric_name": f"a\tb{i}"})
    prepared = writer.prepare(sink, "default")
    assert prepared.raw["metric"][0].startswith(b"PGCOPY\n")
    assert writer.write_prepared(prepared, "default") == 2500
    row = PerformanceMetric.objects.get(metric_name="a\tb7")
    assert row.timestamp == datetime.fromtimestamp(TS + 7, tz=UTC)
    assert (row.session_id, row.url, row.metadata, row.error_details, row.duration) == \
        ("", "", {}, None, None)


def test_a_long_batch_lets_request_threads_in(monkeypatch):
    import threading
    import time

    slept = []
    monkeypatch.setattr(writer, "YIELD_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(time, "sleep", slept.append)
    records = [Measurement(kind="custom", name="n", value=1.0, ts=TS) for _ in range(64)]
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    writer.expand_records(records)
    assert slept == []  # alone in the process: nobody to let in
    monkeypatch.setattr(threading, "active_count", lambda: 3)  # request threads beside it
    writer.expand_records(records)
    assert len(slept) == 64 // writer.YIELD_CHECK_EVERY


def test_names_that_differ_only_past_the_column_length_are_one_series():
    sink = Sink()
    long_a, long_b = "x" * 255 + "a", "x" * 255 + "b"
    reference = ReferencePartial()
    for i in range(50):
        name = long_a if i % 2 else long_b
        value, error, weight = 1.5 * i, i % 7 == 0, 3 if i % 5 == 0 else 1
        sink.measure("custom", name, "", value, error, TS, weight)
        reference.add(value, error, weight)
    [(key, count, total, low, high, errors, sketch)] = sink.rollups()
    assert key == ("custom", "x" * 255, "", int(TS // 60) * 60)
    assert (count, low, high, errors) == (reference.count, reference.min, reference.max,
                                          reference.errors)
    assert total == pytest.approx(reference.sum, rel=1e-12)  # joined, not interleaved
    assert sketch == reference.sketch.to_bytes()
