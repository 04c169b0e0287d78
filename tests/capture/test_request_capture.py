"""A site owner installs the middleware: every request is measured, field by field."""

from __future__ import annotations

import gc

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import AsyncClient, Client
from django.test.utils import CaptureQueriesContext

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.records import NUMBERS, request_record, unpack_numbers
from perfmonitor.checks import MIDDLEWARE_PATH
from perfmonitor.models import MetricRollup, PerformanceMetric
from tests.testapp import views
from tests.testapp.models import Course, Lesson

pytestmark = pytest.mark.django_db


def request_row(route_series: str) -> PerformanceMetric:
    return PerformanceMetric.objects.get(metric_type="request", metric_name=route_series)


def async_get(path: str, **extra) -> object:
    return async_to_sync(AsyncClient(raise_request_exception=False).get)(path, **extra)


def test_sync_view_records_method_route_view_status_duration_and_queries(client, flush):
    first = Course.objects.create(title="Algebra")
    second = Course.objects.create(title="Botany")

    assert client.get(f"/capture/courses/{first.pk}/").status_code == 200
    assert client.get(f"/capture/courses/{second.pk}/?page=3").status_code == 200
    flush()

    rows = PerformanceMetric.objects.filter(metric_type="request").order_by("url")
    # The route template, never the raw path: two courses, one series.
    assert {r.metric_name for r in rows} == {"GET /capture/courses/<int:pk>/"}
    assert [r.url for r in rows] == [f"/capture/courses/{first.pk}/",
                                     f"/capture/courses/{second.pk}/"]
    meta = rows[0].metadata
    assert meta["method"] == "GET"
    assert meta["route"] == "/capture/courses/<int:pk>/"
    assert meta["view"] == "tests.testapp.views.course_detail"
    assert meta["url_name"] == "capture-course"
    assert meta["status"] == 200
    assert meta["query_count"] == 1
    assert 0 < meta["query_time_ms"] <= rows[0].duration
    assert rows[0].error_details is None

    rollup = MetricRollup.objects.get(kind="request")
    assert (rollup.name, rollup.dimension, rollup.count, rollup.errors) == \
        ("/capture/courses/<int:pk>/", "GET", 2, 0)
    # Raw rows keep durations to the microsecond (3 decimals of a millisecond).
    assert rollup.min <= rollup.max and rollup.sum == pytest.approx(sum(r.duration for r in rows),
                                                                   rel=1e-3, abs=1e-3)
    query_rollup = MetricRollup.objects.get(kind="query")
    assert query_rollup.dimension == "GET /capture/courses/<int:pk>/"
    assert query_rollup.count == 2


def test_duration_covers_the_time_spent_in_the_view(client, flush):
    assert client.get("/capture/sleepy/").status_code == 200
    flush()
    row = request_row("GET /capture/sleepy/")
    assert row.duration >= views.SLEEPY_SECONDS * 1000
    assert row.metadata["query_count"] == 0
    assert row.metadata["query_time_ms"] == 0


def test_regex_routes_are_one_series_without_anchors(client, flush):
    client.get("/capture/archive/2023/")
    client.get("/capture/archive/2024/")
    flush()
    rollup = MetricRollup.objects.get(kind="request")
    assert rollup.name == "/capture/archive/(?P<year>[0-9]{4})/"
    assert rollup.count == 2


def test_async_view_records_the_same_fields(flush):
    course = Course.objects.create(title="Chemistry")

    response = async_get(f"/capture/async/courses/{course.pk}/")

    assert response.status_code == 200
    flush()
    row = request_row("GET /capture/async/courses/<int:pk>/")
    assert row.metadata["view"] == "tests.testapp.views.async_course"
    assert row.metadata["status"] == 200
    # The ORM ran in a worker thread (sync_to_async): the ContextVar followed it.
    assert row.metadata["query_count"] == 1
    assert row.metadata["query_time_ms"] > 0


def test_async_view_called_through_the_sync_stack(client, flush):
    course = Course.objects.create(title="Drama")
    assert client.get(f"/capture/async/courses/{course.pk}/").status_code == 200
    flush()
    assert request_row("GET /capture/async/courses/<int:pk>/").metadata["query_count"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_orm_calls_of_one_async_request_are_all_counted(flush):
    Course.objects.create(title="Economics")
    response = async_get("/capture/async/gather/")
    assert response.status_code == 200
    assert response.json() == {"counts": [1, 1]}
    flush()
    assert request_row("GET /capture/async/gather/").metadata["query_count"] == 2


def test_sync_exception_is_an_error_with_its_name(flush):
    response = Client(raise_request_exception=False).get("/capture/boom/")

    assert response.status_code == 500
    flush()
    row = request_row("GET /capture/boom/")
    assert row.metadata["status"] == 500
    assert row.metadata["exception"] == "RuntimeError"
    assert row.metadata["query_count"] == 1
    assert row.error_details == {"exception": "RuntimeError", "status": 500}
    rollup = MetricRollup.objects.get(kind="request")
    assert (rollup.count, rollup.errors) == (1, 1)


def test_async_exception_is_an_error_with_its_name(flush):
    response = async_get("/capture/async/boom/")

    assert response.status_code == 500
    flush()
    row = request_row("GET /capture/async/boom/")
    assert row.error_details == {"exception": "ValueError", "status": 500}
    assert row.metadata["query_count"] == 1
    assert MetricRollup.objects.get(kind="request").errors == 1


def test_http404_from_a_view_is_not_a_server_error(client, flush):
    assert client.get("/capture/missing/").status_code == 404
    flush()
    row = request_row("GET /capture/missing/")
    assert row.metadata["status"] == 404
    assert row.metadata["exception"] == "Http404"
    assert row.error_details is None
    assert MetricRollup.objects.get(kind="request").errors == 0


def test_unknown_urls_share_one_series(client, flush):
    client.get("/no/such/page/1/")
    client.get("/no/such/page/2/")
    flush()
    rollup = MetricRollup.objects.get(kind="request")
    assert (rollup.name, rollup.count) == ("<unresolved>", 2)


def test_nonstandard_methods_share_one_dimension(client, flush):
    client.generic("FROBNICATE", "/capture/plain/")
    flush()
    assert MetricRollup.objects.get(kind="request").dimension == "OTHER"


class TestStreaming:
    def setup_method(self) -> None:
        views.STREAM_PROGRESS.clear()

    def test_stream_is_timed_without_reading_it_and_its_queries_are_attributed(self, client,
                                                                                flush):
        Course.objects.create(title="Film")
        response = client.get("/capture/stream/")

        # The middleware returned without consuming the body, and records nothing yet.
        assert response.streaming
        assert views.STREAM_PROGRESS == []
        assert len(buffer_module.buffer) == 0

        body = b"".join(response.streaming_content)

        assert body.count(b"chunk") == 3
        assert views.STREAM_PROGRESS == [0, 1, 2]
        flush()
        row = request_row("GET /capture/stream/")
        meta = row.metadata
        assert meta["streaming"] is True
        assert meta["aborted"] is False
        assert meta["query_count"] == 3  # run while streaming, after the view returned
        assert 0 <= meta["ttfb_ms"] <= row.duration
        assert buffer_module.buffer.internal_errors == 0

    # transaction=True: closing a response closes the connection (request_finished).
    @pytest.mark.django_db(transaction=True)
    def test_a_stream_the_client_abandons_is_recorded_as_aborted(self, client, flush):
        response = client.get("/capture/stream/")
        iterator = iter(response.streaming_content)
        next(iterator)
        response.close()  # what the server does when the client goes away
        flush()
        meta = request_row("GET /capture/stream/").metadata
        assert meta["aborted"] is True
        assert meta["query_count"] == 1
        assert request_row("GET /capture/stream/").error_details is None

    def test_a_stream_that_fails_is_an_error(self, client, flush):
        response = client.get("/capture/stream/broken/")
        with pytest.raises(RuntimeError):
            b"".join(response.streaming_content)
        flush()
        row = request_row("GET /capture/stream/broken/")
        assert row.error_details == {"exception": "RuntimeError", "status": 500}
        assert row.metadata["query_count"] == 1

    def test_async_stream_queries_are_attributed(self, flush):
        Course.objects.create(title="Geology")

        async def fetch_and_read() -> bytes:
            response = await AsyncClient().get("/capture/async/stream/")
            assert views.STREAM_PROGRESS == []
            return b"".join([chunk async for chunk in response.streaming_content])

        body = async_to_sync(fetch_and_read)()

        assert body.count(b"chunk 2 1") == 1
        flush()
        meta = request_row("GET /capture/async/stream/").metadata
        assert meta["streaming"] is True
        assert meta["query_count"] == 3


def test_views_marked_ignored_and_ignored_paths_capture_nothing(client, perf, process_origin,
                                                                flush):
    # Even in a process whose stray queries are captured, an ignored request's are not.
    perf(IGNORE_PATHS=["/capture/plain/"])
    assert client.get("/capture/ignored/").status_code == 200
    assert client.get("/capture/plain/").status_code == 200
    assert len(buffer_module.buffer) == 0


def test_a_disabled_monitor_captures_nothing(client, perf):
    perf(ENABLED=False)
    Course.objects.create(title="History")
    client.get("/capture/courses/1/")
    assert len(buffer_module.buffer) == 0


def test_the_request_runs_no_perfmonitor_query(client, settings):
    course = Course.objects.create(title="Italian")
    Lesson.objects.create(course=course, title="Ciao")
    url = f"/capture/courses/{course.pk}/"

    with CaptureQueriesContext(connection) as monitored:
        assert client.get(url).status_code == 200
    assert len(buffer_module.buffer) == 1  # it was measured

    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]
    with CaptureQueriesContext(connection) as bare:
        assert client.get(url).status_code == 200

    assert [q["sql"] for q in monitored] == [q["sql"] for q in bare]
    assert len(monitored) == 1
    assert "perfmonitor" not in " ".join(q["sql"] for q in monitored)


def test_waiting_requests_are_plain_values_then_bytes(client):
    """A request waits in the buffer for up to a flush interval. Its fields wait as one
    flat tuple of plain values and a tuple of its queries, which the garbage collector
    stops tracking within three collections, until REQUEST_CHUNK requests wait; then
    the pushing thread packs and marshals them into frames in one bytearray, which
    holds no object at all (objects kept a whole interval and freed together slow the
    serving thread: ``capture.buffer`` tells the story)."""
    course = Course.objects.create(title="Korean")
    Lesson.objects.create(course=course, title="Annyeong")
    for _ in range(2):
        assert client.get(f"/capture/courses/{course.pk}/").status_code == 200
    buffer = buffer_module.buffer

    assert not buffer._items and not buffer._marks and len(buffer._requests) == 2
    assert len(buffer) == 2 and buffer.captured == 2
    for _ in range(3):  # each collection stops tracking one level of tuples: the queries,
        gc.collect()    # their tuple, the request's
    assert not any(gc.is_tracked(fields) for fields in buffer._requests)
    first, second = buffer.waiting()
    assert type(first) is tuple and first[0] == "GET"
    assert first[2].endswith("views.course_detail")
    fields = request_record(first)
    assert fields.route == "/capture/courses/<int:pk>/"
    assert fields.path == f"/capture/courses/{course.pk}/"
    assert '"testapp_course"' in fields.queries[0][0]
    timestamp, duration, *times = unpack_numbers(first[NUMBERS])
    assert (fields.ts, fields.duration_ms) == (timestamp, duration) and duration > 0
    assert [ms for _, ms, _ in fields.queries] == times and times
    assert request_record(second).queries[0][0] == fields.queries[0][0]
    assert buffer.waiting() == [first, second]  # looking takes nothing

    for _ in range(buffer_module.REQUEST_CHUNK - 2):
        assert client.get(f"/capture/courses/{course.pk}/").status_code == 200

    assert not buffer._requests and len(buffer._marks) == buffer_module.REQUEST_CHUNK
    assert gc.get_referents(buffer._frames) == [] and not gc.is_tracked(buffer._frames)
    assert buffer.waiting()[:2] == [first, second] and len(buffer) == buffer.captured == 32


def test_monitor_failures_never_reach_the_host(client, perf):
    course = Course.objects.create(title="Japanese")
    # Settings so broken that capture cannot even start or push.
    perf(IGNORE_PATHS=None, BUFFER_SIZE="many")
    assert client.get(f"/capture/courses/{course.pk}/").status_code == 200
    perf(IGNORE_PATHS=[], MAX_QUERIES_TRACKED_PER_REQUEST="lots")
    assert client.get(f"/capture/courses/{course.pk}/").json() == {"title": "Japanese"}
    assert buffer_module.buffer.internal_errors >= 2


def test_the_request_path_settings_follow_every_settings_change(perf, client):
    """The middleware reads its settings from the slots of conf.request_path; a
    changed PERFMONITOR (setting_changed) reloads them before the next request."""
    from perfmonitor.conf import request_path

    course = Course.objects.create(title="Latin")
    buffer = buffer_module.buffer
    perf(IGNORE_PATHS=["/capture/courses/"], BUFFER_SIZE=777)
    assert not request_path.loaded
    client.get(f"/capture/courses/{course.pk}/")
    assert request_path.loaded and request_path.ignore_prefixes == ("/capture/courses/",)
    assert request_path.buffer_size == 777 and len(buffer) == 0
    perf(IGNORE_PATHS=[], ENABLED=False)
    client.get(f"/capture/courses/{course.pk}/")
    assert request_path.enabled is False and len(buffer) == 0
    perf(ENABLED=True)
    client.get(f"/capture/courses/{course.pk}/")
    assert len(buffer) == 1 and request_path.buffer_size == 777
