"""What a captured request expands into, on the flusher's cheap paths and off them:
every query reaches its rollup, and detail rows appear exactly for slow queries and
N+1 hot spots, however the request's queries are spread."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import ResolverMatch

from perfmonitor.capture import middleware
from perfmonitor.capture.fingerprint import FingerprintCache
from perfmonitor.capture.records import RequestRecord, StandaloneQuery, TaskRecord


class RecordingSink:
    """The flusher's sink interface (measure, row, fingerprint), remembering calls."""

    def __init__(self) -> None:
        self.measures: list[tuple[Any, ...]] = []
        self.rows: list[dict[str, Any]] = []
        self._fingerprints = FingerprintCache()

    def measure(self, kind, name, dimension, value, error, ts, weight=1) -> None:
        self.measures.append((kind, name, dimension, value, error, weight))

    def row(self, model, ts, fields) -> None:
        self.rows.append(fields)

    def fingerprint(self, sql: str) -> tuple[str, str]:
        return self._fingerprints.get(sql)

    def measure_queries(self, queries, dimension, ts, slow_ms):
        return measure_query_by_query(self, queries, dimension, ts, slow_ms)

    def query_measures(self) -> list[tuple[Any, ...]]:
        return [m for m in self.measures if m[0] == "query"]

    def query_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["metric_type"] == "query"]


def measure_query_by_query(sink, queries, dimension, ts, slow_ms):
    """The reference for Sink.measure_queries: fingerprint and measure each query."""
    fps = []
    any_slow = False
    for sql, ms, failed in queries:
        fp = sink.fingerprint(sql)[0]
        sink.measure("query", fp, dimension, ms, failed, ts)
        fps.append(fp)
        any_slow = any_slow or ms >= slow_ms
    return fps, any_slow


def request_record(queries, overflow=None, **fields) -> RequestRecord:
    values = {"method": "GET", "route": "/courses/<int:pk>/", "view": "app.views.course",
              "path": "/courses/7/", "query_string": "token=secret", "status": 200,
              "ts": 1_700_000_000.0, "duration_ms": 12.0, "queries": queries,
              "overflow": overflow or {}}
    values.update(fields)
    return RequestRecord(**values)


@pytest.fixture
def never_sampled(settings):
    settings.PERFMONITOR = {"SAMPLE_RATE": 0.0}


@pytest.mark.usefixtures("never_sampled")
class TestRequestExpansion:
    def test_distinct_fast_queries_feed_rollups_and_write_no_detail_rows(self):
        sink = RecordingSink()
        queries = [(f"SELECT a FROM t{i} WHERE id = %s", 1.5, False) for i in range(10)]
        request_record(queries).expand(sink)

        assert sink.measures[0][:3] == ("request", "/courses/<int:pk>/", "GET")
        assert len(sink.query_measures()) == 10
        assert {m[2] for m in sink.query_measures()} == {"GET /courses/<int:pk>/"}
        assert sink.rows == []

    def test_a_slow_query_among_few_gets_its_detail_row(self, settings):
        settings.PERFMONITOR = {"SAMPLE_RATE": 0.0, "SLOW_QUERY_MS": 100}
        sink = RecordingSink()
        request_record([("SELECT 1", 2.0, False), ("SELECT pg_sleep(%s)", 250.0, False)]
                       ).expand(sink)

        [detail] = sink.query_rows()
        assert detail["metadata"]["slow"] is True and detail["duration"] == 250.0
        assert detail["metadata"]["sql"] == "SELECT pg_sleep(?)"
        assert detail["url"] == "/courses/7/"  # the query string never stored

    def test_an_n_plus_one_is_found_when_its_statements_differ_only_in_values(self):
        sink = RecordingSink()
        queries = [("SELECT a FROM course", 1.0, False)]
        queries += [(f"SELECT a FROM lesson WHERE id IN ({', '.join(['%s'] * n)})", 1.0, False)
                    for n in range(1, 6)]  # five raw strings, one fingerprint
        request_record(queries).expand(sink)

        [detail] = sink.query_rows()
        assert detail["metadata"]["n_plus_one"] is True
        assert detail["metadata"]["count"] == 5
        [request_row] = [r for r in sink.rows if r["metric_type"] == "request"]
        assert request_row["metadata"]["n_plus_one"][0]["count"] == 5

    def test_repeats_below_the_threshold_are_no_n_plus_one(self):
        sink = RecordingSink()
        queries = [("SELECT a FROM lesson WHERE id = %s", 1.0, False)] * 4
        queries += [(f"SELECT b FROM t{i}", 1.0, False) for i in range(6)]
        request_record(queries).expand(sink)

        assert len(sink.query_measures()) == 10
        assert sink.rows == []

    def test_transaction_control_repeating_is_no_n_plus_one(self):
        sink = RecordingSink()
        request_record([('SAVEPOINT "s1"', 0.1, False)] * 6).expand(sink)
        assert sink.query_rows() == []

    def test_queries_past_the_cap_count_with_their_failures(self):
        sink = RecordingSink()
        overflow = {"SELECT a FROM t WHERE id = %s": [3, 6.0, 3], "SELECT b FROM u": [4, 8.0, 1]}
        request_record([], overflow=overflow).expand(sink)

        # All three failed: one failed measure of weight 3, no empty success measure.
        assert sorted(sink.query_measures(), key=lambda m: (m[5], m[4])) == sorted([
            ("query", sink.fingerprint("SELECT a FROM t WHERE id = %s")[0],
             "GET /courses/<int:pk>/", 2.0, True, 3),
            ("query", sink.fingerprint("SELECT b FROM u")[0], "GET /courses/<int:pk>/", 2.0,
             False, 3),
            ("query", sink.fingerprint("SELECT b FROM u")[0], "GET /courses/<int:pk>/", 2.0,
             True, 1),
        ], key=lambda m: (m[5], m[4]))
        assert sum(m[5] for m in sink.query_measures()) == 7

    def test_a_sampled_request_keeps_its_row_with_a_scrubbed_url(self, settings):
        settings.PERFMONITOR = {"SAMPLE_RATE": 1.0}
        sink = RecordingSink()
        request_record([("SELECT 1", 1.0, False)], extra={"note": "kept"}).expand(sink)

        [row] = sink.rows
        assert row["url"] == "/courses/7/"
        assert row["metadata"]["query_count"] == 1 and row["metadata"]["note"] == "kept"


@pytest.mark.usefixtures("never_sampled")
def test_tasks_and_standalone_queries_keep_their_slow_details(settings):
    settings.PERFMONITOR = {"SAMPLE_RATE": 0.0, "SLOW_QUERY_MS": 100}
    sink = RecordingSink()
    TaskRecord(name="reports.build", kind="task", ts=1.0, duration_ms=300.0,
               queries=[("SELECT big", 150.0, False)], overflow={}).expand(sink)
    StandaloneQuery("command:seed", "SELECT fast", 1.0, False, 1.0).expand(sink)
    StandaloneQuery("command:seed", "SELECT slow", 120.0, False, 1.0).expand(sink)

    assert [r["metadata"]["origin"] for r in sink.query_rows()] == ["task:reports.build",
                                                                     "command:seed"]
    assert len(sink.query_measures()) == 3


class TestRouteTemplates:
    def resolved(self, func, route):
        request = RequestFactory().get("/x/")
        request.resolver_match = ResolverMatch(func, (), {}, url_name="x", route=route)
        return request

    def test_a_route_is_computed_once_and_then_served_from_the_cache(self):
        def view(request):
            return None

        first = middleware._route_and_view(self.resolved(view, "^courses/(?P<pk>\\d+)/$"))
        again = middleware._route_and_view(self.resolved(view, "^courses/(?P<pk>\\d+)/$"))
        assert first is again
        assert first[0] == "/courses/(?P<pk>\\d+)/" and first[2] == "x" and first[3] is False
        assert ("^courses/(?P<pk>\\d+)/$", view, "x") in middleware._route_cache

    def test_ignored_views_stay_ignored_and_unhashable_views_still_resolve(self):
        def ignored(request):
            return None

        ignored.perfmonitor_ignore = True  # type: ignore[attr-defined]

        class Unhashable:
            __hash__ = None  # type: ignore[assignment]

            def __call__(self, request):
                return None

        assert middleware._route_and_view(self.resolved(ignored, "health/"))[3] is True
        assert middleware._route_and_view(self.resolved(ignored, "health/"))[3] is True
        route, _, _, skip = middleware._route_and_view(self.resolved(Unhashable(), "u/"))
        assert (route, skip) == ("/u/", False)

    def test_the_cache_is_bounded(self, monkeypatch):
        monkeypatch.setattr(middleware, "MAX_ROUTE_CACHE", 3)
        middleware._route_cache.clear()

        def view(request):
            return None

        for i in range(10):
            middleware._route_and_view(self.resolved(view, f"r{i}/"))
        assert len(middleware._route_cache) <= 3


class TestSinkQueryFastPath:
    """Sink.measure_queries (a statement seen before joins its series by a dict lookup)
    must give exactly what measure() and fingerprint() give query by query."""

    def batch(self) -> list[RequestRecord]:
        shared = [("SELECT a FROM t WHERE id = %s", 1.25, False),
                  ("SELECT b FROM u", 2.5, False)]
        return [
            request_record(shared + [("SELECT a FROM t WHERE id = %s", 3.0, True)]),
            request_record(shared + [("SELECT a FROM t WHERE id = 7", 4, False)]),  # an int
            request_record(shared, ts=1_700_000_090.0),  # the next minute
            request_record(shared, route="/other/"),  # another origin
            request_record([("SELECT b FROM u", float("nan"), False)] + shared),
        ]

    def test_the_fast_path_equals_measuring_query_by_query(self):
        from perfmonitor.capture.writer import Sink

        class SlowSink(Sink):
            __slots__ = ()

            def measure_queries(self, queries, dimension, ts, slow_ms):
                return measure_query_by_query(self, queries, dimension, ts, slow_ms)

        fast, slow = Sink(), SlowSink()
        for record in self.batch():
            record.expand(fast)
        for record in self.batch():
            record.expand(slow)

        assert repr(fast.values) == repr(slow.values)  # series, order, values (NaN too)
        assert fast.errors == slow.errors and fast.weights == slow.weights
        assert fast.new_fingerprints == slow.new_fingerprints
        assert fast.rollups() == slow.rollups()  # counts, sums, extremes, sketch bytes
