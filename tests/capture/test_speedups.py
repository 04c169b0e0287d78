"""The compiled request path (perfmonitor.capture._speedups) against the Python one.

Every other capture test runs with whichever implementation the process loaded: the
compiled one where it was built (``make test``), the Python one under
``PERFMONITOR_PURE_PYTHON=1`` (``make test`` runs the capture tests that way too).
These tests hold the two side by side: the same records for the same requests, no
Python frame of perfmonitor's on the compiled request path, no reference leaked.
"""

from __future__ import annotations

import gc
import os
import struct
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory
from django.urls import resolve

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture import middleware, query_hook
from perfmonitor.capture.context import SUPPRESSED, CaptureContext, current
from perfmonitor.capture.records import NUMBERS, pack_request, request_record
from tests.testapp.models import Course

COMPILED = query_hook.IMPLEMENTATION == "compiled"
PURE_REQUESTED = os.environ.get("PERFMONITOR_PURE_PYTHON", "") not in ("", "0")
USER_ID = 10  # in pack_request's tuple
needs_compiled = pytest.mark.skipif(
    not COMPILED, reason="perfmonitor.capture._speedups not built, or PERFMONITOR_PURE_PYTHON")



def test_the_compiled_module_is_built_where_ci_requires_it() -> None:
    if os.environ.get("PERFMONITOR_REQUIRE_SPEEDUPS") != "1" or PURE_REQUESTED:
        pytest.skip("PERFMONITOR_REQUIRE_SPEEDUPS=1 (.ci/run) makes a missing build fail")
    assert COMPILED, "perfmonitor.capture._speedups did not build or import"
    assert middleware._CompiledMiddleware is not None


def test_pure_python_is_what_the_switch_says() -> None:
    if PURE_REQUESTED:
        assert query_hook.IMPLEMENTATION == "python"
        assert query_hook.query_timer is query_hook._py_query_timer
        assert middleware._CompiledMiddleware is None
    else:
        assert (query_hook.query_timer is query_hook._py_query_timer) == (not COMPILED)


@pytest.fixture
def python_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """use() switches this process to the Python request path until the test ends."""
    wrappers = connection.execute_wrappers

    def use() -> None:
        monkeypatch.setattr(middleware, "_CompiledMiddleware", None)
        monkeypatch.setattr(middleware, "_async_begin", middleware._begin)
        monkeypatch.setattr(middleware, "_async_finish", middleware._finish)
        monkeypatch.setattr(query_hook, "query_timer", query_hook._py_query_timer)
        wrappers[:] = [query_hook._py_query_timer if w is compiled_timer else w
                       for w in wrappers]

    compiled_timer = query_hook.query_timer
    yield use
    wrappers[:] = [compiled_timer if w is query_hook._py_query_timer else w for w in wrappers]


def _requests_through(client: Client, course: Course) -> None:
    client.get(f"/capture/courses/{course.pk}/", {"page": "2"})
    client.post("/capture/plain/")
    client.get("/capture/queries/12/")
    client.get("/capture/archive/2024/")
    client.get("/capture/ignored/")
    client.get("/no/such/page/")
    client.options("/capture/plain/")
    with pytest.raises(RuntimeError, match="view failed"):  # the client re-raises it
        client.get("/capture/boom/")
    b"".join(client.get("/capture/stream/").streaming_content)


def _plain(waiting: tuple[Any, ...]) -> tuple[Any, ...]:
    """A waiting request as pack_request returns it: the compiled middleware packs its
    requests itself, the Python one leaves that to the buffer."""
    return waiting if type(waiting[NUMBERS]) is bytes else pack_request(*waiting)


def _comparable(waiting: tuple[Any, ...]) -> tuple[Any, ...]:
    """The plain tuple without what differs between any two runs (the clock, the
    duration and the queries' times), keeping how many numbers there are."""
    plain = list(_plain(waiting))
    plain[NUMBERS] = len(plain[NUMBERS])
    return tuple(plain)


def _buffered() -> tuple[list[tuple[Any, ...]], list[Any]]:
    requests = [_comparable(fields) for fields in buffer_module.buffer._requests]
    streamed = [record._replace(ts=0, duration_ms=0, ttfb_ms=0,
                                queries=[(q[0], q[2]) for q in record.queries])
                for record in buffer_module.buffer._items]
    return requests, streamed


@needs_compiled
@pytest.mark.django_db
def test_both_paths_buffer_the_same_records(python_path: Callable[[], None]) -> None:
    course = Course.objects.create(title="Harmony")
    Client().get(f"/capture/courses/{course.pk}/")  # the route cache, warm for both
    buffer_module.buffer.reset()
    client = Client(raise_request_exception=True)
    _requests_through(client, course)
    compiled = _buffered()
    buffer_module.buffer.reset()
    python_path()
    _requests_through(Client(raise_request_exception=True), course)
    python = _buffered()
    assert compiled == python
    # /capture/ignored/ is not recorded; the stream's record is finished when it ends.
    assert [(fields[0], fields[5]) for fields in compiled[0]] == [
        ("GET", 200), ("POST", 200), ("GET", 200), ("GET", 200), ("GET", 404),
        ("OPTIONS", 200), ("GET", 500)]
    assert [record.route for record in compiled[1]] == ["/capture/stream/"]


def _async_requests_through(client: AsyncClient, course: Course) -> None:
    async def run() -> None:
        await client.get(f"/capture/async/courses/{course.pk}/", {"page": "2"})
        await client.get(f"/capture/courses/{course.pk}/")  # a sync view, async stack
        await client.post("/capture/plain/")
        await client.get("/capture/ignored/")
        await client.get("/no/such/page/")
        await client.get("/capture/async/boom/")
        await client.get("/capture/async/gather/")
        b"".join([chunk async for chunk in
                  (await client.get("/capture/async/stream/")).streaming_content])

    async_to_sync(run)()


@needs_compiled
@pytest.mark.django_db(transaction=True)
def test_both_paths_buffer_the_same_records_under_an_async_handler(
        python_path: Callable[[], None]) -> None:
    course = Course.objects.create(title="Fugue")
    client = AsyncClient(raise_request_exception=False)
    _async_requests_through(client, course)  # the route cache, warm for both
    assert middleware._async_finish is not middleware._finish  # the compiled one
    buffer_module.buffer.reset()
    _async_requests_through(client, course)
    compiled = _buffered()
    buffer_module.buffer.reset()
    python_path()
    _async_requests_through(client, course)
    python = _buffered()
    assert compiled == python
    assert [(fields[1], fields[5]) for fields in compiled[0]] == [
        ("/capture/async/courses/<int:pk>/", 200), ("/capture/courses/<int:pk>/", 200),
        ("/capture/plain/", 200), (middleware.UNRESOLVED_ROUTE, 404),
        ("/capture/async/boom/", 500), ("/capture/async/gather/", 200)]
    assert [record.route for record in compiled[1]] == ["/capture/async/stream/"]


@needs_compiled
@pytest.mark.django_db(transaction=True)
def test_no_python_of_perfmonitor_runs_around_an_async_view_but_the_coroutine() -> None:
    course = Course.objects.create(title="Canon")
    client = AsyncClient()
    path = f"/capture/async/courses/{course.pk}/"
    async_to_sync(client.get)(path)  # the route cache
    calls: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and "perfmonitor" in frame.f_code.co_filename:
            calls.append(frame.f_code.co_name)

    async def get() -> Any:
        sys.setprofile(profile)
        try:
            return await client.get(path)
        finally:
            sys.setprofile(None)

    response = async_to_sync(get)()
    assert response.status_code == 200
    # __call__ hands Django the coroutine, __acall__ (entered, resumed after each await)
    # awaits the view; around that nothing of perfmonitor's runs in Python.
    assert set(calls) == {"__call__", "__acall__"}
    [*_, waiting] = buffer_module.buffer._requests
    assert type(waiting[NUMBERS]) is bytes  # packed by the compiled finish
    record = request_record(waiting)
    assert record.route == "/capture/async/courses/<int:pk>/" and len(record.queries) == 1


@needs_compiled
@pytest.mark.django_db
def test_the_user_id_of_a_user_the_host_loaded_is_the_same_on_both_paths(
        python_path: Callable[[], None]) -> None:
    user = User.objects.create_user("ada", password="x")
    request = RequestFactory().get("/capture/plain/")
    request._cached_user = user

    def view(request: Any) -> HttpResponse:
        request.resolver_match = resolve(request.path_info)
        return HttpResponse("ok")

    recorded = []
    for switch in (lambda: None, python_path):
        switch()
        buffer_module.buffer.reset()
        middleware.PerformanceMiddleware(view)(request)
        [fields] = buffer_module.buffer._requests
        recorded.append(_comparable(fields))
    assert recorded[0] == recorded[1]
    assert recorded[0][USER_ID] == str(user.pk)


@needs_compiled
@pytest.mark.django_db
def test_no_python_of_perfmonitor_runs_on_the_compiled_request_path() -> None:
    course = Course.objects.create(title="Counterpoint")
    client = Client()
    client.get(f"/capture/courses/{course.pk}/")  # the route cache
    calls: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and "perfmonitor" in frame.f_code.co_filename:
            calls.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        response = client.get(f"/capture/courses/{course.pk}/")
    finally:
        sys.setprofile(None)
    assert response.status_code == 200
    assert calls == []
    [*_, waiting] = buffer_module.buffer._requests
    assert type(waiting[NUMBERS]) is bytes  # packed by the compiled middleware
    record = request_record(waiting)
    assert record.route == "/capture/courses/<int:pk>/" and len(record.queries) == 1
    assert record.duration_ms > record.queries[0][1] > 0


@needs_compiled
def test_the_compiled_context_is_the_one_python_makes() -> None:
    seen = []

    def view(request: Any) -> HttpResponse:
        seen.append(current.get())
        return HttpResponse("ok")

    handler = middleware.PerformanceMiddleware(view)
    handler(RequestFactory().get("/nowhere/"))  # loads the settings the request path reads
    handler(RequestFactory().get("/nowhere/"))
    made = seen[-1]
    expected = CaptureContext(made.limit)
    assert type(made) is CaptureContext and made is not SUPPRESSED
    for name in CaptureContext.__slots__:
        assert getattr(made, name) == getattr(expected, name), name
    assert made.queries == [] and type(made.queries) is list


@needs_compiled
def test_a_failure_while_recording_is_counted_and_the_response_goes_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing(list):
        def append(self, item: Any) -> None:
            raise RuntimeError("no room")

    monkeypatch.setattr(buffer_module.buffer, "_requests", Refusing())
    monkeypatch.setattr(buffer_module.buffer, "_fast_until", 10)

    def view(request: Any) -> HttpResponse:
        request.resolver_match = resolve("/capture/plain/")
        return HttpResponse("fine")

    middleware._route_cache.clear()
    handler = middleware.PerformanceMiddleware(view)
    handler(RequestFactory().get("/capture/plain/"))  # fills the route cache (Python _finish)
    before = buffer_module.buffer.internal_errors
    response = handler(RequestFactory().get("/capture/plain/"))
    assert response.content == b"fine"
    assert buffer_module.buffer.internal_errors == before + 1


@needs_compiled
def test_the_compiled_request_path_keeps_no_references() -> None:
    response = HttpResponse("ok")

    def view(request: Any) -> HttpResponse:
        request.resolver_match = resolve("/capture/plain/")
        return response

    handler = middleware.PerformanceMiddleware(view)
    request = RequestFactory().get("/capture/plain/", {"q": "1"})
    handler(request)
    buffer_module.buffer.reset()
    counts = (sys.getrefcount(request), sys.getrefcount(response), sys.getrefcount(view))
    for _ in range(2000):
        handler(request)
    buffer_module.buffer.reset()
    gc.collect()
    assert (sys.getrefcount(request), sys.getrefcount(response), sys.getrefcount(view)) == counts

    tracemalloc.start()
    try:
        for _ in range(3):  # settle
            for _ in range(2000):
                handler(request)
            buffer_module.buffer.reset()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            handler(request)
        buffer_module.buffer.reset()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes kept after 20,000 requests"


@needs_compiled
def test_the_compiled_async_ends_keep_no_references_and_count_their_failures() -> None:
    response = HttpResponse("ok")

    async def view(request: Any) -> HttpResponse:
        request.resolver_match = resolve("/capture/plain/")
        return response

    handler = middleware.PerformanceMiddleware(view)
    request = RequestFactory().get("/capture/plain/", {"q": "1"})

    async def serve(n: int) -> None:
        for _ in range(n):
            assert await handler(request) is response

    async_to_sync(serve)(1)
    buffer_module.buffer.reset()
    counts = (sys.getrefcount(request), sys.getrefcount(response))
    async_to_sync(serve)(2000)
    assert len(buffer_module.buffer._requests) + len(buffer_module.buffer._marks) == 2000
    buffer_module.buffer.reset()
    gc.collect()
    assert (sys.getrefcount(request), sys.getrefcount(response)) == counts

    # A failure while recording is counted, and the response still goes out.
    class Refusing(list):
        def append(self, item: Any) -> None:
            raise RuntimeError("no room")

    buffer = buffer_module.buffer
    buffer._requests, buffer._fast_until = Refusing(), 10
    ctx = middleware._async_begin(request)
    before = buffer.internal_errors
    try:
        assert middleware._async_finish(request, response, ctx, 0.0, 0.0) is response
        assert buffer.internal_errors == before + 1
    finally:
        buffer.reset()
    with pytest.raises(TypeError, match="5 arguments"):
        middleware._async_finish(request, response, ctx, 0.0)
    with pytest.raises(TypeError):
        middleware._async_finish(request, response, ctx, "noon", 0.0)


@needs_compiled
def test_the_compiled_query_timer_keeps_no_references() -> None:
    sql = "SELECT %s /* " + "refcount" * 3 + " */"
    result = object()

    def execute(sql: Any, params: Any, many: bool, context: Any) -> object:
        return result

    ctx = CaptureContext(10_000_000)
    token = current.set(ctx)
    try:
        query_hook.query_timer(execute, sql, None, False, {})
        counts = (sys.getrefcount(sql), sys.getrefcount(result), sys.getrefcount(ctx))
        for _ in range(50_000):
            assert query_hook.query_timer(execute, sql, None, False, {}) is result
        assert len(ctx.queries) == 50_001
        assert all(q[0] is sql for q in ctx.queries)
        ctx.queries.clear()
        # the one tuple in ctx.queries when counted held one more reference to sql
        assert (sys.getrefcount(sql) + 1, sys.getrefcount(result),
                sys.getrefcount(ctx)) == counts
    finally:
        current.reset(token)


@needs_compiled
def test_the_compiled_query_timer_records_a_failed_query_and_re_raises_it() -> None:
    def execute(sql: Any, params: Any, many: bool, context: Any) -> None:
        raise ValueError("syntax")

    ctx = CaptureContext(5)
    token = current.set(ctx)
    try:
        with pytest.raises(ValueError, match="syntax"):
            query_hook.query_timer(execute, "SELECT broken", None, False, {})
    finally:
        current.reset(token)
    [(sql, ms, failed)] = ctx.queries
    assert sql == "SELECT broken" and failed and ms >= 0


@needs_compiled
def test_the_compiled_query_timer_hands_the_overflow_to_python() -> None:
    def execute(sql: Any, params: Any, many: bool, context: Any) -> int:
        return 1

    ctx = CaptureContext(2)
    token = current.set(ctx)
    try:
        for _ in range(5):
            query_hook.query_timer(execute, "SELECT 1", None, False, {})
    finally:
        current.reset(token)
    assert len(ctx.queries) == 2
    assert ctx.overflow is not None and ctx.overflow["SELECT 1"][0] == 3
    assert ctx.query_count == 5


@needs_compiled
def test_the_compiled_query_timer_reads_any_context_python_could() -> None:
    """The compiled timer reads the context's slots in place on a CaptureContext; a
    subclass goes through the ordinary lookup, and a context whose slots were never
    set fails its recording (counted), never the query."""
    class Traced(CaptureContext):
        __slots__ = ("note",)

    def execute(sql: Any, params: Any, many: bool, context: Any) -> str:
        return "rows"

    sub = Traced(3)
    broken = CaptureContext.__new__(CaptureContext)  # no slot set
    errors = buffer_module.buffer.internal_errors
    for ctx in (sub, broken):
        token = current.set(ctx)
        try:
            assert query_hook.query_timer(execute, "SELECT 1", None, False, {}) == "rows"
        finally:
            current.reset(token)
    assert [(sql, failed) for sql, _, failed in sub.queries] == [("SELECT 1", False)]
    assert buffer_module.buffer.internal_errors == errors + 1


@needs_compiled
def test_the_compiled_module_refuses_types_it_cannot_read_in_place() -> None:
    from perfmonitor.capture import _speedups
    from perfmonitor.conf import request_path

    class Loose:  # attributes in a __dict__, not in __slots__
        queries = limit = overflow = exception = _overflow_lock = None

    args = (current, SUPPRESSED, query_hook._interned, query_hook._py_query_timer,
            query_hook._record, query_hook._count_error, query_hook.MAX_INTERNED_SQL)
    with pytest.raises(TypeError, match="queries is not a writable __slots__ attribute"):
        _speedups.configure(current, Loose(), *args[2:], request_path)
    with pytest.raises(TypeError, match="loaded is not a writable __slots__ attribute"):
        _speedups.configure(*args, Loose())
    with pytest.raises(TypeError, match="the context type is not configure"):
        _speedups.configure_middleware(Loose, middleware._begin, middleware._finish, {}, {},
                                       buffer_module, middleware._count_middleware_error,
                                       lambda: 0.0)
    # what the failed calls left configured still serves: a request is recorded
    buffer_module.buffer.reset()
    Client().get("/capture/plain/")
    [record] = buffer_module.buffer.waiting()
    assert record[1] == "/capture/plain/"


@needs_compiled
@pytest.mark.django_db
def test_the_compiled_clocks_are_the_ones_python_reads() -> None:
    """The compiled middleware reads the wall clock and the monotonic clock itself; its
    timestamps and durations stay on time.time() and time.perf_counter()."""
    import time

    buffer_module.buffer.reset()
    before = time.time()
    started = time.perf_counter()
    Client().get("/capture/queries/3/")
    elapsed_ms = (time.perf_counter() - started) * 1000
    after = time.time()
    [record] = buffer_module.buffer.waiting()
    ts, duration_ms, *query_ms = struct.unpack(f"<{len(record[NUMBERS]) // 8}d",
                                                record[NUMBERS])
    assert before <= ts <= after
    assert 0 < duration_ms <= elapsed_ms
    assert len(query_ms) == 3 and 0 < sum(query_ms) < duration_ms


@needs_compiled
@pytest.mark.parametrize("queries, overflow, user", [
    ((), None, ""),
    ((("SELECT 1", 0.25, False),), None, "7"),
    ((("SELECT 1", 0.25, False), ("UPDATE t SET a = %s", 3, True)), None, ""),
    (tuple((f"SELECT {i}", i / 7, False) for i in range(40)), {"SELECT 0": [3, 1.5, 0]}, "42"),
    ([("SELECT 2", 1e-9, False), ("SELECT 2", 1e9, False)], None, ""),
])
def test_the_compiled_pack_request_is_byte_for_byte_the_python_one(queries, overflow, user):
    from perfmonitor.capture import _speedups

    fields = ("POST", "/courses/<int:pk>/", "app.views.detail", "/courses/9/", "a=1", 201,
              1_795_957_739.103, 12.5, queries, overflow, "ValueError", "course", user)
    compiled, python = _speedups.pack_request(*fields), pack_request(*fields)
    assert compiled == python
    assert [type(v) for v in compiled] == [type(v) for v in python]
    assert request_record(compiled) == request_record(python)


@needs_compiled
def test_the_compiled_pack_request_refuses_what_the_python_one_refuses():
    from perfmonitor.capture import _speedups

    good = ("GET", "/", "v", "/", "", 200, 1.0, 2.0, (), None, "", "", "")
    for broken in [good[:12], good[:6] + ("x",) + good[7:], good[:8] + ((("S", 1.0),),) + good[9:],
                   good[:8] + ((("S", "slow", False),),) + good[9:]]:
        with pytest.raises((TypeError, ValueError, struct.error)):
            pack_request(*broken)
        with pytest.raises((TypeError, ValueError)):
            _speedups.pack_request(*broken)
