"""Requests expanded together, by shape, store what expanding them one by one stores:
the same rollups (counts, extremes, errors, sketches; sums up to their last bits) and
the same raw rows, whatever the batch mixes (errors, slow requests, slow and failed
queries, queries past the cap, N+1 patterns, odd values)."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest

from perfmonitor.capture import writer
from perfmonitor.capture.records import (
    expand_plain,
    expand_requests,
    pack_request,
    request_record,
)
from perfmonitor.capture.writer import Sink

MINUTE = 1_700_000_040.0  # a minute's start

STATEMENTS = [
    'SELECT "lms_course"."id", "lms_course"."title" FROM "lms_course" WHERE "lms_course"."id" = %s',
    'SELECT COUNT(*) AS "__count" FROM "lms_booking" WHERE "lms_booking"."course_id" = %s',
    'SELECT "lms_teacher"."id" FROM "lms_teacher" WHERE "lms_teacher"."id" IN (%s, %s, %s)',
    'UPDATE "lms_student" SET "last_seen" = %s WHERE "lms_student"."id" = %s',
    'SAVEPOINT "s1"',
]
N_PLUS_ONE = 'SELECT "lms_student"."name" FROM "lms_student" WHERE "lms_student"."id" = %s'


def plain(method: str, route: str, status: int, ts: float, duration: float,
          queries: list[tuple[str, float, bool]], overflow: Any = None, exception: str = "",
          path: str = "/p/", query_string: str = "") -> tuple[Any, ...]:
    """A request as the middleware pushes it."""
    return pack_request(method, route, "app.views.v", path, query_string, status, ts, duration,
                        queries, overflow, exception, "v", "7")


def shapes(rng: random.Random) -> list[tuple[str, str, list[str]]]:
    return [
        ("GET", "/courses/<int:pk>/", STATEMENTS[:3]),
        ("GET", "/courses/<int:pk>/", STATEMENTS[:2]),  # same route, fewer statements
        ("POST", "/bookings/", STATEMENTS[1:4]),
        ("GET", "/reports/", [N_PLUS_ONE] * 6 + [STATEMENTS[0]]),  # an N+1
        ("GET", "/savepoints/", [STATEMENTS[4]] * 6),  # repeats, but transaction control
        ("PURGE", "/cache/", []),  # no queries, a method outside the standard set
        ("GET", "/courses/", [STATEMENTS[0]] + STATEMENTS[:3]),
    ]


def mixed_batch(seed: int, n: int = 2500) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    kinds = shapes(rng)
    batch = []
    for i in range(n):
        method, route, sqls = rng.choice(kinds)
        ts = MINUTE + rng.uniform(-30, 90)  # two minutes and a bit
        duration = rng.lognormvariate(3, 1)
        queries = [(sql, rng.lognormvariate(0, 1), False) for sql in sqls]
        status, exception, overflow = 200, "", None
        roll = rng.random()
        if roll < 0.03:
            status, exception = 500, "ValueError"
        elif roll < 0.05:
            duration = 2500.0 + rng.random()  # slow request
        elif roll < 0.07 and queries:
            sql, _, _ = queries[0]
            queries[0] = (sql, 600.0 + rng.random(), False)  # slow query
        elif roll < 0.08 and queries:
            sql, ms, _ = queries[-1]
            queries[-1] = (sql, ms, True)  # failed query
        elif roll < 0.09:
            overflow = {STATEMENTS[0]: [30.0, 45.0]}  # past the per-request cap
        elif roll < 0.095:
            duration = float("nan")
        elif roll < 0.1:
            status = 404
        batch.append(plain(method, route, status, ts, duration, queries, overflow, exception,
                           path=f"/p/{i}/", query_string="secret=1&page=2"))
    batch.append(("GET", "/broken/"))  # not a request tuple at all: fails, one by one
    return batch


def one_by_one(batch: list[tuple[Any, ...]]) -> tuple[Sink, int]:
    sink, failures = Sink(), 0
    for record in batch:
        try:
            expand_plain(record, sink)
        except Exception:
            failures += 1
    return sink, failures


def rollups(sink: Sink) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {key: tuple(rest) for key, *rest in sink.rollups()}


def rows(sink: Sink) -> Counter[str]:
    return Counter(repr((ts, sorted(fields.items()))) for ts, fields in sink.rows["metric"])


@pytest.fixture
def sample_rate(settings):
    def set_rate(rate: float) -> None:
        settings.PERFMONITOR = {"SAMPLE_RATE": rate}
    return set_rate


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_a_batch_stores_what_one_by_one_stores(sample_rate, rate):
    sample_rate(rate)  # 0: only the rows a request needs; 1: every request's row too
    batch = mixed_batch(seed=3)
    together, kept, failures = writer.expand_records(batch)
    reference, reference_failures = one_by_one(batch)

    assert failures == reference_failures == 1
    assert len(kept) == len(batch) - 1
    got, want = rollups(together), rollups(reference)
    assert got.keys() == want.keys()
    for key, (count, total, low, high, errors, sketch) in want.items():
        g_count, g_total, g_low, g_high, g_errors, g_sketch = got[key]
        assert (g_count, g_low, g_high, g_errors, g_sketch) == \
            (count, low, high, errors, sketch), key
        assert math.isclose(g_total, total, rel_tol=1e-12), key
    assert rows(together) == rows(reference)
    assert together.new_fingerprints == reference.new_fingerprints
    if rate == 0.0:  # slow, failed and N+1 requests and their detail rows; nothing sampled
        assert 0 < len(together.rows["metric"]) < len(batch) / 2


def test_common_requests_skip_the_one_by_one_path(sample_rate):
    sample_rate(0.0)
    common = [plain("GET", "/courses/<int:pk>/", 200, MINUTE + i / 100, 12.5 + i,
                    [(STATEMENTS[0], 0.5, False), (STATEMENTS[1], 1.5 + i, False)])
              for i in range(50)]
    special = [
        plain("GET", "/courses/<int:pk>/", 500, MINUTE, 9.0, [(STATEMENTS[0], 0.5, False)],
              exception="KeyError"),
        plain("GET", "/courses/<int:pk>/", 200, MINUTE, 9.0, [(STATEMENTS[0], 700.0, False)]),
        plain("GET", "/courses/<int:pk>/", 200, MINUTE, 9.0, [(STATEMENTS[0], 0.5, True)]),
        plain("GET", "/reports/", 200, MINUTE, 9.0, [(N_PLUS_ONE, 0.1, False)] * 5),
    ]
    sink = Sink()
    left, failed = expand_requests(common + special, sink)
    # A failed query sends its request one by one at once, the slow one after its shape's
    # columns are read: the same records, in another order.
    assert sorted(left, key=special.index) == special and failed == []
    minute = MINUTE // 60
    assert sink.values[("request", "/courses/<int:pk>/", "GET", minute)] == \
        [12.5 + i for i in range(50)]
    count_fp = sink.fingerprint(STATEMENTS[1])[0]
    series = "GET /courses/<int:pk>/"
    assert sink.values[("query", count_fp, series, minute)] == [1.5 + i for i in range(50)]
    assert sink.rows["metric"] == []


def test_a_slow_query_takes_only_its_own_request_off_the_batch(sample_rate):
    sample_rate(0.0)
    batch = [plain("GET", "/a/", 200, MINUTE, 5.0, [(STATEMENTS[0], ms, False)])
             for ms in (1.0, 900.0, 2.0, 3.0)]
    sink = Sink()
    left, _ = expand_requests(batch, sink)
    assert left == [batch[1]]
    assert sink.values[("request", "/a/", "GET", MINUTE // 60)] == [5.0, 5.0, 5.0]


def test_sampled_requests_of_a_batch_get_their_rows(sample_rate):
    sample_rate(1.0)
    record = plain("GET", "/courses/<int:pk>/", 200, MINUTE, 12.0,
                   [(STATEMENTS[0], 0.5, False)], query_string="token=abc&page=2")
    sink = Sink()
    expand_requests([record], sink)
    (ts, row), = sink.rows["metric"]
    reference = Sink()
    request_record(record).expand(reference)
    assert [(ts, row)] == reference.rows["metric"]
    assert row["metadata"]["query_count"] == 1 and "abc" not in row["url"]
