"""One writer per host: a site's processes hand their requests to one of them.

Nothing is lost or written twice when the writer refuses, goes away or is
replaced, and only processes that would write the same rows the same way (same
user, database and settings) ever meet.
"""

from __future__ import annotations

import json
import marshal
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from perfmonitor.capture import frames, health_row, sharing
from perfmonitor.capture.buffer import Buffer
from perfmonitor.capture.records import pack_request
from perfmonitor.models import MetricRollup, MonitorHealth, PerformanceMetric
from tests.capture.conftest import wait_for
from tests.capture.test_background_work import _database_url_for_a_child, _read_back

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def request(n: int, route: str = "/shared/<int:pk>/") -> tuple[Any, ...]:
    return pack_request("GET", route, "tests.shared", f"/shared/{n}/", "", 200, time.time(),
                        2.0 + n, [("SELECT 1 FROM course WHERE id = %s", 0.25, False)], None,
                        "", "", "")


def stored_requests() -> int:
    return PerformanceMetric.objects.filter(metric_type="request").count()


def counted_requests() -> int:
    return sum(MetricRollup.objects.filter(kind="request").values_list("count", flat=True))


@pytest.fixture
def processes(perf):
    """make() -> a Buffer with its own flusher thread, as one process of the site has."""
    perf(BACKGROUND_FLUSH=True, FLUSH_INTERVAL=0.05, SAMPLE_RATE=1.0)
    made: list[Buffer] = []

    def make() -> Buffer:
        made.append(Buffer())
        return made[-1]

    yield make
    for buffer in made:
        buffer.stop(timeout=10)


def role(buffer: Buffer) -> str:
    return buffer._sharing.role if buffer._sharing is not None else ""


@pytest.mark.postgres
def test_a_second_process_hands_its_requests_to_the_writer(processes):
    writer, sender = processes(), processes()
    for n in range(5):
        writer.push(request(n))
    wait_for(lambda: role(writer) == "writer" and writer.flushed == 5)

    for n in range(7):
        sender.push(request(n))

    # (Counters move just after the rows they stand for commit.)
    wait_for(lambda: stored_requests() == 12 and counted_requests() == 12
             and sender.flushed == 7)
    assert role(sender) == "sender"
    # Each counts its own records; the writer also counts what it received.
    assert (writer.captured, writer.flushed, writer.received) == (5, 5, 7)
    assert (sender.captured, sender.flushed, sender.received) == (7, 7, 0)
    assert writer.dropped == sender.dropped == 0
    assert writer.stats()["shared_role"] == "writer" and sender.stats()["received"] == 0


@pytest.mark.postgres
def test_when_the_writer_stops_a_sender_writes_itself_and_takes_over(processes):
    first, second = processes(), processes()
    first.push(request(0))
    wait_for(lambda: role(first) == "writer")
    second.push(request(1))
    wait_for(lambda: stored_requests() == 2 and role(second) == "sender")

    first.stop(timeout=10)  # a worker recycled: the address is free again
    for n in range(4):
        second.push(request(n))
    wait_for(lambda: stored_requests() == 6)  # its writer gone, it wrote them itself
    second.push(request(5))
    wait_for(lambda: stored_requests() == 7 and role(second) == "writer")  # then took over

    third = processes()  # a new worker finds the new writer
    third.push(request(9))
    wait_for(lambda: stored_requests() == 8 and counted_requests() == 8
             and second.flushed == 6 and third.flushed == 1)
    assert role(third) == "sender" and second.received == 1
    assert counted_requests() == 8  # nothing lost, nothing written twice
    assert (second.flushed, third.flushed) == (6, 1)


@pytest.mark.postgres
def test_a_writer_whose_writes_fail_refuses_and_the_sender_keeps_its_records(processes):
    writer, sender = processes(), processes()
    writer.push(request(0))
    wait_for(lambda: role(writer) == "writer" and writer.flushed == 1)
    writer.consecutive_failures = 1  # as after a failed flush: it takes nobody's records
    writer._next_attempt = time.monotonic() + 3600

    sender.push(request(1))
    sender.push(request(2))

    # The sender wrote them itself (its counter moves just after the rows commit).
    wait_for(lambda: stored_requests() == 3 and sender.flushed == 2)
    assert role(sender) == "sender" and writer.received == 0 and sender.flushed == 2


def test_the_writer_takes_no_more_than_its_buffer_holds(perf):
    perf(BUFFER_SIZE=5)
    writer = Buffer()
    writer._take_received(frames.encode([request(n) for n in range(4)]), 4)
    assert writer._room(1) is not None
    assert writer._room(2) is None  # memory stays bounded: the sender writes those itself
    assert (len(writer), writer.captured, writer.received) == (4, 0, 4)


def test_a_received_frame_that_is_not_a_record_is_counted_and_skipped():
    writer = Buffer()
    junk = marshal.dumps([1, 2])
    data = (frames.encode([request(0)]) + frames.header(len(junk), 1) + junk
            + frames.header(3, 1) + b"\xff\xff\xff" + frames.encode([request(1)]))
    writer._take_received(data, 4)
    batch: list[tuple[Any, ...]] = []
    assert writer._take_frames(writer._received, writer._received_marks, batch, 100) == 2
    assert [record[3] for record in batch] == ["/shared/0/", "/shared/1/"]
    assert writer.internal_errors == 2 and not writer._received_marks and len(writer) == 2


@pytest.fixture
def pair():
    """A writer and a sender on a fresh address of their own. What the writer takes
    goes to ``taken``: the records of each message, and a sender's health row as
    ("health", its bytes)."""
    address = b"\0perfmonitor.test-" + uuid.uuid4().hex.encode()
    taken: list[Any] = []
    answer: list[float | None] = [0.25]
    made = []

    def make() -> sharing.Sharing:
        made.append(sharing.Sharing())
        made[-1]._address = address
        assert made[-1].elect(lambda n: answer[0],
                              lambda data, n: taken.append(frames.decode(data, n)[0]),
                              lambda data: taken.append(("health", bytes(data))))
        return made[-1]

    writer, sender = make(), make()
    assert (writer.role, sender.role) == ("writer", "sender")
    yield writer, sender, address, taken, answer
    for one in made:
        one.close(timeout=5)


def test_the_writer_answers_when_its_next_flush_is_and_keeps_what_it_took(pair):
    _, sender, _, taken, answer = pair
    records = [request(1), ("process:web", "SELECT 1", 0.5, False, 1.0)]
    assert sender.hand_over(frames.encode(records)) == 0.25
    wait_for(lambda: taken)
    assert taken == [records]

    answer[0] = None  # full, or its writes fail
    assert sender.hand_over(frames.encode(records)) is None
    assert len(taken) == 1 and sender.role == "sender"  # refused, still linked


@pytest.mark.parametrize(("writer_flushes_in", "sender_wakes_in"), [
    (0.5, 0.48),  # just before the writer's next flush
    (0.03, 1.0),  # that flush is about to start: just before the one after (capped)
    (0.0, 0.98),  # it has started: the one after
])
def test_a_sender_hands_over_once_per_flush_of_the_writer(pair, perf, writer_flushes_in,
                                                          sender_wakes_in):
    perf(BACKGROUND_FLUSH=False, FLUSH_INTERVAL=1.0)
    _, link, _, taken, answer = pair
    sender = Buffer()
    sender._sharing = link
    sender._add_frame([request(1)])
    answer[0] = writer_flushes_in
    assert sender._hand_over(100)
    wait_for(lambda: taken)
    assert sender._sleep_seconds() == pytest.approx(sender_wakes_in, abs=0.01)
    assert sender._sleep_seconds() == 1.0  # a wake-up the writer did not time: the interval


def test_a_bad_frame_closes_only_its_own_connection(pair):
    _, sender, address, taken, _ = pair
    one = frames.encode([request(1)])
    for frame in (sharing.FRAME.pack(5, 0) + b"junk!",  # not frames
                  sharing.FRAME.pack(100, 0) + one[:10],  # cut short
                  sharing.FRAME.pack(len(one) + 3, 0) + one + b"abc",  # a frame cut short
                  sharing.FRAME.pack(0, 0),  # nothing
                  sharing.FRAME.pack(sharing.MAX_FRAME_BYTES + 1, 0),  # too big
                  sharing.FRAME.pack(0, sharing.MAX_HEALTH_BYTES + 1),  # a health row too big
                  sharing.FRAME.pack(len(one), 50) + one + b"x" * 10):  # health cut short
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bad:
            bad.settimeout(10)
            bad.connect(address)
            bad.sendall(frame)
            bad.shutdown(socket.SHUT_WR)
            assert bad.recv(64) == b""  # no answer: closed
    assert taken == []
    assert sender.hand_over(frames.encode([request(2)])) == 0.25  # others are served as before


def _stats(process: str, **changes: Any) -> dict[str, Any]:
    stats = {"process": process, "started_at": 1_700_000_000.0, "captured": 12,
             "flushed": 11, "dropped": 1, "flush_errors": 0, "internal_errors": 0,
             "buffer_size": 1, "last_flush_at": 1_700_000_100.5, "last_error": ""}
    return {**stats, **changes}


def test_a_senders_health_row_goes_to_the_writer_not_to_the_database(pair, perf):
    perf(BACKGROUND_FLUSH=False)
    _, link, _, taken, answer = pair
    sender = Buffer()
    sender._sharing = link
    sender.push(request(1))
    sender._maybe_write_health()
    wait_for(lambda: taken)
    [(kind, data)] = taken
    row = health_row.unpack_from_sender(data)
    assert kind == "health" and row is not None
    assert (row["process"], row["captured"], row["buffer_size"]) == (
        sender.stats()["process"], 1, 1)
    assert row["updated_at"] == pytest.approx(time.time(), abs=5)

    answer[0] = None  # a writer that refuses (its writes fail): the sender writes it itself
    sender._last_health = -3600.0
    sender._health_written = None
    sender._maybe_write_health()
    assert len(taken) == 1
    [stored] = MonitorHealth.objects.all()
    assert (stored.process, stored.captured) == (sender.stats()["process"], 1)


def test_the_writer_writes_its_senders_health_rows_with_its_own(perf):
    perf(BACKGROUND_FLUSH=False)
    writer = Buffer()
    writer.push(request(1))
    reported = time.time() - 3.0
    writer._take_health(health_row.pack_for_writer(_stats("web-1:17"), reported))
    writer._take_health(health_row.pack_for_writer(_stats("web-2:18", captured=4), reported))
    writer._take_health(health_row.pack_for_writer(_stats("web-2:18", captured=5), reported))
    writer._take_health(b"not a health row")
    writer._take_health(health_row.pack_for_writer(_stats("web-3:19", flushed=-1), reported))
    writer._take_health(health_row.pack_for_writer(_stats("bad\0name"), reported))
    assert writer.internal_errors == 3 and sorted(writer._peer_health) == ["web-1:17",
                                                                           "web-2:18"]
    writer._maybe_write_health()

    rows = {row.process: row for row in MonitorHealth.objects.all()}
    assert sorted(rows) == sorted([writer.stats()["process"], "web-1:17", "web-2:18"])
    assert (rows["web-2:18"].captured, rows["web-1:17"].dropped) == (5, 1)  # the latest kept
    # A sender's row says when the sender reported, not when the writer wrote it.
    assert rows["web-1:17"].updated_at.timestamp() == pytest.approx(reported, abs=0.01)
    assert rows["web-1:17"].last_flush_at.timestamp() == pytest.approx(1_700_000_100.5)
    assert not writer._peer_health

    # Only a sender's new row makes the next look write again, and it writes that one.
    writer._last_health = -3600.0
    writer._take_health(health_row.pack_for_writer(_stats("web-1:17", captured=99), reported))
    writer._maybe_write_health()
    assert MonitorHealth.objects.get(process="web-1:17").captured == 99


def test_many_senders_health_rows_are_written_a_statement_at_a_time(monkeypatch):
    monkeypatch.setattr(health_row, "MAX_ROWS_PER_STATEMENT", 2)
    peers = [health_row.unpack_from_sender(health_row.pack_for_writer(
        _stats(f"web:{n}", captured=n), time.time())) for n in range(4)]
    health_row.write_health(_stats("writer:1"), peers + peers[:1])  # one sent twice
    assert dict(MonitorHealth.objects.values_list("process", "captured")) == {
        "writer:1": 12, "web:0": 0, "web:1": 1, "web:2": 2, "web:3": 3}


def test_a_writer_holds_a_bounded_number_of_senders_health_rows(perf, monkeypatch):
    from perfmonitor.capture import buffer as buffer_module

    monkeypatch.setattr(buffer_module, "MAX_PEER_HEALTH", 3)
    writer = Buffer()
    for n in range(5):
        writer._take_health(health_row.pack_for_writer(_stats(f"web:{n}"), time.time()))
    assert list(writer._peer_health) == ["web:2", "web:3", "web:4"]  # the oldest went


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_a_process_of_another_user_is_not_heard(pair):
    _, _, address, taken, _ = pair
    payload = frames.encode([request(3)])
    pid = os.fork()
    if pid == 0:  # the child: another user on the same host
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
                other.settimeout(10)
                other.connect(address)
                try:
                    other.sendall(sharing.FRAME.pack(len(payload), 0) + payload)
                    code = 0 if other.recv(64) == b"" else 2
                except ConnectionError:
                    code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert taken == []


def test_only_processes_that_write_the_same_rows_share_an_address(perf, settings):
    from django.db import connection

    here = sharing.address()
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        assert here is None  # each process has its own database: nothing to share
        return
    assert here is not None and here.startswith(b"\0perfmonitor.")
    assert sharing.address() == here
    perf(SLOW_QUERY_MS=123)  # processes that would expand records differently never meet
    assert sharing.address() not in (None, here)
    perf(SHARED_WRITER=False)
    assert sharing.address() is None


def test_several_worker_processes_write_through_one_of_them(tmp_path):
    """Three real processes: one becomes the writer, the two others hand it their
    requests and their health rows (and open no database connection); every request
    is stored once, also after they all exit."""
    url = _database_url_for_a_child(tmp_path)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": url}
    tag = uuid.uuid4().hex[:8]  # each worker's PostgreSQL connections carry its name
    workers = [subprocess.Popen([sys.executable, "-m", "tests.capture.sharing_worker", "40"],
                                cwd=ROOT, env={**env, "PGAPPNAME": f"sharing-{tag}-{i}"},
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for i in range(3)]
    try:
        def send(command: str) -> list[str]:
            for worker in workers:
                worker.stdin.write(command + "\n")
                worker.stdin.flush()
            return [worker.stdout.readline().strip() for worker in workers]

        assert [worker.stdout.readline().strip() for worker in workers] == ["ready"] * 3
        assert send("go") == ["pushed"] * 3

        def stored() -> int:
            return _read_back(url, "SELECT count(*) FROM perfmonitor_performance_metrics "
                                   "WHERE metric_type = 'request'")[0][0]

        def all_flushed() -> list[dict[str, Any]] | None:
            """Each one's counters, once each counts its 40 flushed (a writer's counter
            moves just after the rows it stands for commit)."""
            found = [json.loads(line) for line in send("stats")]
            return found if all(s["flushed"] == 40 for s in found) else None

        wait_for(lambda: stored() == 120, timeout=30)
        stats = wait_for(all_flushed, timeout=30)
        assert sorted(s["shared_role"] for s in stats) == ["sender", "sender", "writer"]
        [writer] = [s for s in stats if s["shared_role"] == "writer"]
        assert writer["received"] == 80
        assert [s["flushed"] for s in stats] == [40, 40, 40]

        def health_rows() -> dict[str, tuple[int, int]] | None:
            found = {process: (captured, flushed) for process, captured, flushed in _read_back(
                url, "SELECT process, captured, flushed FROM perfmonitor_monitor_health")}
            return found if all(found.get(s["process"]) == (40, 40) for s in stats) else None

        wait_for(health_rows, timeout=30)  # the senders' too, written by the writer
        if url.startswith("postgres"):
            connected = _read_back(url, "SELECT application_name FROM pg_stat_activity "
                                        f"WHERE application_name LIKE 'sharing-{tag}-%'")
            assert len(connected) == 1  # the writer's flusher: the senders have none

        final = [json.loads(line) for line in send("exit")]
        assert [worker.wait(timeout=30) for worker in workers] == [0, 0, 0]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert all(s["dropped"] == 0 and s["flush_errors"] == 0 for s in final)
    assert stored() == 120
    counted = _read_back(url, "SELECT sum(count) FROM perfmonitor_metric_rollups "
                              "WHERE kind = 'request'")[0][0]
    assert counted == 120
