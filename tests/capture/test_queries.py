"""Every SQL query is timed by the hook, fingerprinted off the request path, and
an N+1 is spotted with its detail rows capped."""

from __future__ import annotations

import pytest
from django.db import connection, connections

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture import query_hook
from perfmonitor.capture.fingerprint import fingerprint_of, normalize_sql
from perfmonitor.capture.records import StandaloneQuery
from perfmonitor.models import MetricRollup, PerformanceMetric, QueryFingerprint
from perfmonitor.retention import prune
from tests.testapp.models import Course, Lesson

LESSONS_ROUTE = "GET /capture/lessons/"


def course_with_lessons(n: int) -> Course:
    course = Course.objects.create(title="Statistics")
    Lesson.objects.bulk_create([Lesson(course=course, title=f"L{i}") for i in range(n)])
    return course


def query_details(**filters) -> list[PerformanceMetric]:
    return list(PerformanceMetric.objects.filter(metric_type="query", **filters))


class TestFingerprints:
    @pytest.mark.parametrize(("a", "b"), [
        ("SELECT a FROM t WHERE id = %s", "SELECT  a\n\tFROM t   WHERE id =   %s"),
        ("SELECT a FROM t WHERE id IN (%s, %s)", "SELECT a FROM t WHERE id IN (%s, %s, %s, %s)"),
        ("SELECT a FROM t WHERE id IN (1, 2)", "SELECT a FROM t WHERE id IN (3)"),
        ("SELECT a FROM t LIMIT 21", "SELECT a FROM t LIMIT 100"),
        ("INSERT INTO t (a) VALUES (%s)", "INSERT INTO t (a) VALUES (%s), (%s), (%s)"),
        ("SELECT a FROM t WHERE n = 'alice'", "SELECT a FROM t WHERE n = 'bob'"),
        ('SAVEPOINT "s1_x1"', 'SAVEPOINT "s2_x9"'),
    ])
    def test_statements_that_differ_only_in_values_share_a_fingerprint(self, a, b):
        assert fingerprint_of(normalize_sql(a)) == fingerprint_of(normalize_sql(b))

    def test_different_statements_do_not(self):
        assert normalize_sql("SELECT a FROM t") != normalize_sql("SELECT b FROM t")
        assert normalize_sql('SELECT "t1"."c2" FROM "t1"') == 'SELECT "t1"."c2" FROM "t1"'

    @pytest.mark.parametrize("sql", [
        "SELECT * FROM t WHERE a = 'x--y hunter2' AND b = 2",
        "SELECT * FROM t WHERE a = E'it\\'s hunter2'",
        "SELECT * FROM t /* it's */ WHERE a = 'hunter2'",
        "SELECT $$hunter2$$, $tag$hunter2$tag$",
        "SELECT * FROM t WHERE a = 'hunter2",  # unterminated (or cut)
        "SELECT * FROM t WHERE a = 4417 AND b = -3.5e2",
        "SELECT * FROM t -- hunter2\nWHERE 1 = 1",
    ])
    def test_no_value_survives_normalization(self, sql):
        normalized = normalize_sql(sql)
        assert "hunter2" not in normalized
        assert "4417" not in normalized and "3.5" not in normalized


@pytest.mark.django_db
class TestNPlusOne:
    def test_same_fingerprint_threshold_times_in_one_request_is_an_n_plus_one(self, client,
                                                                             flush):
        course_with_lessons(6)
        assert client.get("/capture/lessons/").status_code == 200
        flush()

        [hot] = query_details(metadata__n_plus_one=True)
        assert hot.metadata["count"] == 6
        assert hot.metadata["origin"] == LESSONS_ROUTE
        assert hot.url == "/capture/lessons/"
        assert '"testapp_course"' in hot.metadata["sql"] and "%s" not in hot.metadata["sql"]
        request = PerformanceMetric.objects.get(metric_type="request")
        assert request.metadata["query_count"] == 7
        assert request.metadata["n_plus_one"] == [
            {"fingerprint": hot.metric_name, "count": 6, "total_ms": hot.duration}]
        assert QueryFingerprint.objects.get(fingerprint=hot.metric_name).sql == hot.metadata["sql"]
        # Rollups see every query, per fingerprint and route.
        rollup = MetricRollup.objects.get(kind="query", name=hot.metric_name)
        assert (rollup.dimension, rollup.count) == (LESSONS_ROUTE, 6)

    def test_below_the_threshold_is_not(self, client, perf, flush):
        course_with_lessons(4)
        client.get("/capture/lessons/")
        flush()
        assert query_details() == []
        assert PerformanceMetric.objects.get(metric_type="request").metadata["n_plus_one"] == []

        perf(N_PLUS_ONE_THRESHOLD=3)
        client.get("/capture/lessons/")
        flush()
        assert len(query_details(metadata__n_plus_one=True)) == 1

    def test_query_detail_rows_are_capped_per_request(self, client, perf, flush):
        perf(SLOW_QUERY_MS=0, MAX_QUERY_DETAILS_PER_REQUEST=3)
        assert client.get("/capture/queries/10/").json() == {"ran": 10}
        flush()
        # One N+1 row and two of the ten slow queries: three in all.
        details = query_details()
        assert len(details) == 3
        assert sum(1 for d in details if d.metadata["n_plus_one"] and not d.metadata["slow"]) == 1

    def test_past_the_tracking_cap_queries_are_summed_not_lost(self, client, perf, flush):
        perf(MAX_QUERIES_TRACKED_PER_REQUEST=4)
        client.get("/capture/queries/12/")
        flush()
        request = PerformanceMetric.objects.get(metric_type="request")
        assert request.metadata["query_count"] == 12
        [rollup] = MetricRollup.objects.filter(kind="query")
        assert rollup.count == 12
        assert request.metadata["n_plus_one"][0]["count"] == 12

    def test_transaction_savepoints_are_not_an_n_plus_one(self):
        from perfmonitor.capture.records import RequestRecord
        from perfmonitor.capture.writer import expand

        queries = [(f'SAVEPOINT "s1_x{i}"', 0.1, False) for i in range(10)]
        record = RequestRecord(method="POST", route="/r/", view="v", path="/r/",
                               query_string="", status=200, ts=0.0, duration_ms=1.0,
                               queries=queries, overflow={})
        sink, failures = expand([record])
        assert failures == 0
        assert [row for _, row in sink.rows["metric"] if row["metric_type"] == "query"] == []


@pytest.mark.django_db
class TestHookInstallation:
    def test_installed_once_on_every_connection_even_after_reconnects(self):
        fresh = connections.create_connection("default")
        try:
            assert query_hook.query_timer not in fresh.execute_wrappers  # not connected yet
            fresh.ensure_connection()  # connection_created
            assert fresh.execute_wrappers.count(query_hook.query_timer) == 1
            fresh.close()
            fresh.ensure_connection()  # connection_created again
            query_hook.install(fresh)
            assert fresh.execute_wrappers.count(query_hook.query_timer) == 1
        finally:
            fresh.close()

    def test_connections_opened_before_perfmonitor_was_ready_get_it_once(self):
        connection.ensure_connection()
        connection.execute_wrappers.remove(query_hook.query_timer)
        try:
            query_hook.install_on_existing_connections()
            query_hook.install_on_existing_connections()
            assert connection.execute_wrappers.count(query_hook.query_timer) == 1
        finally:
            while query_hook.query_timer in connection.execute_wrappers:
                connection.execute_wrappers.remove(query_hook.query_timer)
            query_hook.install(connection)

    def test_a_host_execute_wrapper_block_that_opens_the_connection_keeps_both(self):
        fresh = connections.create_connection("default")
        seen = []

        def host_wrapper(execute, sql, params, many, context):
            seen.append(sql)
            return execute(sql, params, many, context)

        try:
            with fresh.execute_wrapper(host_wrapper), fresh.cursor() as cursor:
                cursor.execute("SELECT 1")  # first query: connects inside the block
            assert seen == ["SELECT 1"]
            assert fresh.execute_wrappers == [query_hook.query_timer]
        finally:
            fresh.close()


@pytest.mark.django_db
class TestQueriesOutsideRequests:
    def test_a_stray_query_is_attributed_to_the_process(self, process_origin, flush):
        process_origin("command:import_courses")
        Course.objects.count()
        [record] = buffer_module.buffer.waiting()
        origin, sql, ms, failed, _ = StandaloneQuery(*record)
        assert origin == "command:import_courses"
        assert '"testapp_course"' in sql and ms > 0 and not failed
        flush()
        rollup = MetricRollup.objects.get(kind="query")
        assert rollup.dimension == "command:import_courses"

    def test_with_capture_off_a_query_is_passed_through_without_reading_the_clock(
            self, process_origin, perf, monkeypatch):
        reads = []
        clock = query_hook._perf
        monkeypatch.setattr(query_hook, "_perf", lambda: reads.append(1) or clock())
        perf(ENABLED=False)
        assert Course.objects.count() == 0
        assert reads == [] and len(buffer_module.buffer) == 0
        perf(ENABLED=True)  # turned back on: timed and captured again
        assert Course.objects.count() == 0
        assert len(reads) == 2 and len(buffer_module.buffer) == 1

    def test_perfmonitor_own_reads_and_writes_are_never_captured(self, client, process_origin,
                                                                 flush):
        # In a process whose stray queries are captured, perfmonitor's own work
        # (flush, health, prune, reports) must add nothing to the buffer.
        course = Course.objects.create(title="Music")
        buffer_module.buffer.reset()
        client.get(f"/capture/courses/{course.pk}/")
        assert len(buffer_module.buffer) == 1
        assert flush(health=True) > 0
        prune()
        from perfmonitor.health import health_report

        health_report()
        assert len(buffer_module.buffer) == 0
        assert buffer_module.buffer.captured == 1
        assert not QueryFingerprint.objects.filter(sql__icontains="perfmonitor").exists()
        assert set(MetricRollup.objects.values_list("kind", flat=True)) == {"request", "query"}

    def test_suppressed_blocks_capture_nothing_and_what_they_wrap_gets_its_context_back(
            self, process_origin):
        from perfmonitor.capture import track
        from perfmonitor.capture.context import SUPPRESSED, capture_suppressed, current

        buffer = buffer_module.buffer
        with capture_suppressed():
            Course.objects.count()  # outside a request, in a captured process
            with track("inside-own-work"):  # a unit inside perfmonitor's own work
                Course.objects.count()
            assert current.get() is SUPPRESSED
        assert len(buffer) == 0 and buffer.captured == 0
        with track("nightly"):
            Course.objects.count()
            with capture_suppressed():
                Course.objects.count()
            Course.objects.exists()
        assert current.get() is None
        [task] = buffer.waiting()
        assert task.name == "nightly" and len(task.queries) == 2
        Course.objects.count()
        assert len(buffer) == 2  # and the process's stray queries are captured again


@pytest.mark.django_db
def test_a_failing_query_is_counted_and_its_error_reaches_the_host_unchanged(flush):
    from django.db import DatabaseError, transaction

    from perfmonitor.capture import track

    with track("broken-report"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_anywhere")
        Course.objects.count()
    flush()
    failing = MetricRollup.objects.get(kind="query", name__in=[
        fp for fp, in QueryFingerprint.objects.filter(sql__contains="no_such_table")
        .values_list("fingerprint")])
    assert (failing.count, failing.errors) == (1, 1)
    assert MetricRollup.objects.get(kind="task").errors == 0  # the task itself carried on
