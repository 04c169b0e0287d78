"""The buffer is bounded, counts what it drops, never raises, and survives a fork."""

from __future__ import annotations

import os
import sys
import threading
import tracemalloc

import pytest

from perfmonitor import health as health_module
from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture import frames
from perfmonitor.capture.buffer import ThreadCounter
from perfmonitor.capture.records import FIRST_SQL, Measurement, RequestRecord, pack_request
from perfmonitor.models import MetricRollup, PerformanceMetric
from tests.testapp.models import Course

buffer = buffer_module.buffer


def measurement(i: int = 0) -> Measurement:
    return Measurement(kind="custom", name=f"m{i % 7}", value=float(i), ts=1_700_000_000.0)


def request_record(i: int = 0) -> RequestRecord:
    sql = 'SELECT "testapp_course"."id" FROM "testapp_course" WHERE "testapp_course"."id" = %s'
    return RequestRecord(method="GET", route="/courses/<int:pk>/", view="v", path=f"/courses/{i}/",
                         query_string="", status=200, ts=1_700_000_000.0, duration_ms=5.0,
                         queries=[(sql, 0.5, False)] * 10, overflow={})


def test_a_full_buffer_drops_and_counts_and_memory_stays_bounded(perf):
    perf(BUFFER_SIZE=500)
    for i in range(500):
        buffer_module.push(request_record(i))
    assert (len(buffer), buffer.captured, buffer.dropped) == (500, 500, 0)

    grew = memory_growth_pushing(request_record, 20_000)

    assert (len(buffer), buffer.captured, buffer.dropped) == (500, 500, 20_000)
    # 20 000 records held would take megabytes; what grew is loop noise.
    assert grew < 64 * 1024


def memory_growth_pushing(make, n: int, push=buffer_module.push) -> int:
    """Bytes traced memory grew by while n records made by make(i) were pushed."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(n):
            push(make(i))
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before


def plain_request(i: int = 0) -> tuple:
    """A request as the buffer packs it (pack_request): a plain tuple, which waits as bytes."""
    sql = 'SELECT "testapp_course"."id" FROM "testapp_course" WHERE "testapp_course"."id" = %s'
    return pack_request("GET", "/courses/<int:pk>/", "v", f"/courses/{i}/", "", 200,
                        1_700_000_000.0 + i, 5.0, [(sql, 0.5, False)] * 10, None, "", "", "")


def test_plain_requests_fill_the_buffer_as_bytes_and_memory_stays_bounded(perf):
    perf(BUFFER_SIZE=500)
    for i in range(500):
        buffer_module.push(plain_request(i))
    assert (len(buffer), buffer.captured, buffer.dropped) == (500, 500, 0)
    assert not buffer._items and len(buffer._marks) == 500
    held = len(buffer._frames)

    grew = memory_growth_pushing(plain_request, 20_000)

    assert (len(buffer), buffer.captured, buffer.dropped) == (500, 500, 20_000)
    assert len(buffer._frames) == held and grew < 64 * 1024
    assert [record[3] for record in buffer.waiting()] == [f"/courses/{i}/" for i in range(500)]


def race(pusher, taker, threads: int, done: threading.Event) -> None:
    """Run pusher(n) in n threads while taker runs, switching threads as often as the
    interpreter can; set done when the pushers are through, and wait for the taker."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        consumer = threading.Thread(target=taker)
        consumer.start()
        workers = [threading.Thread(target=pusher, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        done.set()
        consumer.join()
    finally:
        sys.setswitchinterval(interval)


def request_fields(i: int = 0) -> tuple:
    """A request as the middleware pushes it: pack_request's arguments, flat."""
    sql = 'SELECT "testapp_course"."id" FROM "testapp_course" WHERE "testapp_course"."id" = %s'
    return ("GET", "/courses/<int:pk>/", "v", f"/courses/{i}/", "", 200, 1_700_000_000.0 + i, 5.0,
            ((sql, 0.5, False),) * 10, None, "", "", "")


def test_finished_requests_are_packed_a_chunk_at_a_time_and_memory_stays_bounded(perf):
    perf(BUFFER_SIZE=500, BACKGROUND_FLUSH=False)
    chunk = buffer_module.REQUEST_CHUNK
    for i in range(chunk - 1):
        buffer.push_request(request_fields(i))
    assert len(buffer._requests) == chunk - 1 and not buffer._marks and len(buffer) == chunk - 1
    buffer.push_request(request_fields(chunk - 1))
    assert not buffer._requests and len(buffer._marks) == chunk  # packed by the pusher
    for i in range(chunk, 500):
        buffer.push_request(request_fields(i))
    assert (len(buffer), buffer.captured, buffer.dropped) == (500, 500, 0)

    grew = memory_growth_pushing(request_fields, 20_000, buffer.push_request)

    assert (len(buffer), buffer.captured, buffer.dropped) == (500, 500, 20_000)
    assert grew < 64 * 1024
    waiting = buffer.waiting()  # frames first, then the requests not packed yet
    assert [record[3] for record in waiting] == [f"/courses/{i}/" for i in range(500)]
    assert waiting[0] == pack_request(*request_fields(0))
    assert waiting[-1] == pack_request(*request_fields(499))


def test_a_request_that_cannot_be_packed_is_counted_and_the_chunk_kept(perf):
    perf(BACKGROUND_FLUSH=False)
    errors = buffer.internal_errors
    buffer.push_request(("GET", "/broken/"))  # not pack_request's arguments
    for i in range(1, buffer_module.REQUEST_CHUNK):
        buffer.push_request(request_fields(i))
    assert buffer.internal_errors == errors + 1
    assert [record[3] for record in buffer.waiting()] == [
        f"/courses/{i}/" for i in range(1, buffer_module.REQUEST_CHUNK)]


def test_requests_that_only_append_never_take_room_that_other_records_took(perf):
    """push_request's fast path counts on the room the last full check saw; records
    pushed meanwhile (and a smaller BUFFER_SIZE) make the next request check again."""
    perf(BUFFER_SIZE=100, BACKGROUND_FLUSH=False)
    for i in range(40):  # a chunk packed, 8 waiting: the next 23 could only append
        buffer.push_request(request_fields(i))
    for i in range(60):
        buffer_module.push(measurement(i))
    for i in range(40, 50):
        buffer.push_request(request_fields(i))
    assert (len(buffer), buffer.captured, buffer.dropped) == (100, 100, 10)

    buffer.reset()
    perf(BUFFER_SIZE=100, BACKGROUND_FLUSH=False)
    for i in range(40):
        buffer.push_request(request_fields(i))
    perf(BUFFER_SIZE=45, BACKGROUND_FLUSH=False)
    for i in range(40, 50):
        buffer.push_request(request_fields(i))
    assert (len(buffer), buffer.captured, buffer.dropped) == (45, 45, 5)


def test_a_chunk_of_requests_is_one_frame_and_its_requests_share_their_strings(perf):
    perf(BACKGROUND_FLUSH=False)
    chunk = buffer_module.REQUEST_CHUNK
    # Ten statements, each one string object for every request (the query hook interns them).
    statements = [f'SELECT "testapp_course"."id" FROM "testapp_course" WHERE "{column}" = %s'
                  for column in "abcdefghij"]
    fields = [(*request_fields(i)[:8], tuple((sql, 0.5, False) for sql in statements),
               *request_fields(i)[9:]) for i in range(chunk)]
    for one in fields:
        buffer.push_request(one)
    assert frames.count(buffer._frames) == (chunk, len(buffer._frames))
    alone = len(frames.encode([pack_request(*one) for one in fields]))
    assert len(buffer._frames) < alone / 3  # each statement written once, then referred to

    batch: list = []
    assert buffer._take_frames(buffer._frames, buffer._marks, batch, 1) == chunk  # whole frames
    assert batch == [pack_request(*one) for one in fields]
    assert batch[0][FIRST_SQL:] == tuple(statements)
    assert all(a is b for a, b in zip(batch[0][FIRST_SQL:], batch[-1][FIRST_SQL:], strict=True))
    assert not buffer._frames and not buffer._marks and buffer._held == chunk  # until written


def test_a_request_marshal_cannot_carry_waits_as_it_is_and_its_chunk_is_framed(perf):
    perf(BACKGROUND_FLUSH=False)
    odd = (*request_fields(0)[:-1], object())  # a user id no middleware makes
    buffer.push_request(odd)
    for i in range(1, buffer_module.REQUEST_CHUNK):
        buffer.push_request(request_fields(i))
    assert len(buffer) == buffer_module.REQUEST_CHUNK and buffer.internal_errors == 0
    assert len(buffer._items) == 1 and len(buffer._marks) == buffer_module.REQUEST_CHUNK - 1
    assert sorted(record[3] for record in buffer.waiting()) == sorted(
        f"/courses/{i}/" for i in range(buffer_module.REQUEST_CHUNK))


@pytest.mark.parametrize("finished", [False, True], ids=["plain tuples", "finished requests"])
def test_threads_pushing_while_the_flusher_takes_lose_and_mix_nothing(perf, finished):
    """Frames of concurrent pushers never interleave, and what the flusher takes while
    they push is taken once; finished requests are packed by their pushers a chunk at a
    time and by the flusher when it takes: every record comes out whole, exactly once."""
    perf(BUFFER_SIZE=1_000_000, BACKGROUND_FLUSH=False)
    threads, per_thread = 4, 3000
    if finished:
        push, make = buffer.push_request, request_fields

        def expected(i: int) -> tuple:
            return pack_request(*request_fields(i))
    else:
        push, make, expected = buffer_module.push, plain_request, plain_request
    taken: list[tuple] = []
    done = threading.Event()

    def pusher(n: int) -> None:
        for i in range(per_thread):
            push(make(n * per_thread + i))

    def take(batch: list, limit: int) -> None:
        buffer._pack_requests()
        buffer._take_frames(buffer._frames, buffer._marks, batch, limit)

    def taker() -> None:
        while not done.is_set():
            batch: list = []
            take(batch, 10_000)
            taken.extend(batch)

    race(pusher, taker, threads, done)
    rest: list = []
    take(rest, 1_000_000)
    records = taken + rest

    assert len(taken) > 0 and not buffer._requests and not buffer._marks and not buffer._frames
    assert sorted(records, key=lambda r: r[3]) == sorted(
        (expected(i) for i in range(threads * per_thread)), key=lambda r: r[3])
    assert buffer._held == threads * per_thread  # all taken, none left behind


@pytest.mark.django_db
def test_requests_are_served_while_the_buffer_is_full(client, perf):
    perf(BUFFER_SIZE=2)
    course = Course.objects.create(title="Physics")
    for _ in range(5):
        assert client.get(f"/capture/courses/{course.pk}/").status_code == 200
    assert (len(buffer), buffer.dropped) == (2, 3)


def test_counters_lose_no_update_under_many_threads(perf):
    perf(BUFFER_SIZE=30_000)
    threads, per_thread = 8, 6_000
    barrier = threading.Barrier(threads)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible

    def hammer() -> None:
        barrier.wait()
        for i in range(per_thread):
            buffer_module.push(measurement(i))
            if i % 100 == 0:
                buffer.count_internal_error("test", RuntimeError("counted"))

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(old_interval)

    assert buffer.captured + buffer.dropped == threads * per_thread
    assert buffer.captured == len(buffer)
    assert 30_000 <= len(buffer) <= 30_000 + threads  # each racing thread may append one
    assert buffer.internal_errors == threads * per_thread // 100


def test_thread_counter_keeps_counts_of_finished_threads_and_forgets_their_cells():
    counter = ThreadCounter()
    for _ in range(50):
        t = threading.Thread(target=lambda: [counter.add() for _ in range(10)])
        t.start()
        t.join()
    counter.add()
    assert counter.value == 501
    assert len(counter._cells) <= 2  # only live threads keep a cell


def test_push_never_raises_into_the_caller(perf):
    perf(BUFFER_SIZE="not a number")
    buffer_module.push(measurement())
    assert buffer.internal_errors == 1


@pytest.mark.django_db
def test_a_record_that_cannot_expand_is_dropped_alone(flush):
    class Broken:
        def expand(self, sink):
            raise ValueError("bad record")

    buffer_module.push(Broken())
    buffer_module.push(measurement(1))
    flush()
    assert MetricRollup.objects.filter(kind="custom").count() == 1
    assert buffer.internal_errors == 1
    assert len(buffer) == 0


@pytest.mark.django_db
def test_a_batch_the_database_refuses_is_retried_then_dropped(flush):
    # A value no database accepts for a float column: not a lost connection, so
    # it is retried a few times and then given up, not kept forever.
    buffer_module.push(Measurement(kind="custom", name="bad", value=1.0, ts=1_700_000_000.0,
                                   row_model="metric",
                                   row={"metric_type": "custom", "metric_name": "bad",
                                        "duration": "not a number"}))
    for attempt in range(1, buffer_module.MAX_DATA_ERROR_ATTEMPTS + 1):
        assert buffer.flush(force=True) == 0
        assert buffer.flush_errors == attempt
    assert len(buffer) == 0
    assert buffer.dropped == 1
    assert "not a number" in buffer.last_error
    buffer_module.push(measurement())
    assert flush() > 0  # the monitor goes on
    assert buffer.consecutive_failures == 0


@pytest.mark.django_db
def test_flush_now_writes_everything_and_reports_health(flush):
    for i in range(25):
        buffer_module.push(request_record(i))
    written = flush(health=True)
    assert written > 0
    assert PerformanceMetric.objects.filter(metric_type="request").count() == 25
    stats = buffer.stats()
    assert (stats["captured"], stats["flushed"], stats["buffer_size"]) == (25, 25, 0)
    from perfmonitor.models import MonitorHealth

    row = MonitorHealth.objects.get(process=buffer_module.process_name())
    assert (row.captured, row.flushed, row.dropped) == (25, 25, 0)


@pytest.mark.django_db
def test_the_health_row_follows_the_counters_and_an_idle_one_only_beats(perf):
    from perfmonitor.models import MonitorHealth

    perf(BACKGROUND_FLUSH=False)
    writes = []

    def tick(seconds: float) -> MonitorHealth:
        buffer._last_health -= seconds  # as if that much time had passed
        buffer._last_health_write -= seconds
        before = MonitorHealth.objects.filter(process=buffer_module.process_name()).first()
        buffer.flush(force=True)  # as the flusher's wake-up: writes health when due
        row = MonitorHealth.objects.get(process=buffer_module.process_name())
        writes.append(before is None or row.updated_at != before.updated_at)
        return row

    buffer_module.push(measurement())
    assert tick(0).flushed == 1  # the first flush writes it
    tick(1)  # within the interval: not looked at
    buffer_module.push(measurement())
    assert tick(buffer_module.HEALTH_INTERVAL_SECONDS).flushed == 2  # moved: written
    for _ in range(5):  # idle: the same counters, not written again...
        tick(buffer_module.HEALTH_INTERVAL_SECONDS)
    tick(buffer_module.HEALTH_INTERVAL_SECONDS)  # ...until the heartbeat is due
    assert writes == [True, False, True, False, False, False, False, False, True]
    assert (health_module.STALE_AFTER.total_seconds() / 2
            > buffer_module.HEALTH_HEARTBEAT_SECONDS)  # an idle process stays alive
    buffer_module.push(measurement())
    buffer.flush(force=True)
    buffer.write_health()  # an explicit write (commands, exit) always writes
    assert MonitorHealth.objects.get(process=buffer_module.process_name()).flushed == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_starts_with_an_empty_buffer_of_its_own(perf):
    perf(BACKGROUND_FLUSH=False)
    for i in range(10):
        buffer_module.push(measurement(i))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a gunicorn / Celery prefork worker
        try:
            ok = (len(buffer) == 0 and buffer.captured == 0 and buffer._thread is None)
            buffer_module.push(measurement())
            ok = ok and len(buffer) == 1 and buffer.captured == 1
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 2)
    os.waitpid(pid, 0)
    os.close(read)
    assert answer == b"ok"
    assert len(buffer) == 10  # the parent keeps its own records
