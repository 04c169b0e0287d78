"""The bounded in-process buffer and its background flusher.

``push_request`` (the middleware) and ``push`` (everything else) are all the
request path calls: a length check, an append and, once per process, starting
the flusher thread. No lock is taken there and nothing is written.

Plain tuples (the middleware's requests, the query hook's stray queries: the
bulk of what is pushed) wait as bytes: marshalled into frames (a stray query
alone, requests a chunk at a time; :mod:`perfmonitor.capture.frames`),
appended to one ``bytearray`` with a single ``extend`` (atomic under the GIL,
so frames of concurrent threads never interleave), and one byte per record in
a second ``bytearray`` counts them. Kept as objects for a flush
interval, a second's worth of small records sat scattered among the serving
thread's short-lived objects in the allocator's pools and were then freed
together by the flusher, and the serving thread ran slower for it: by
callgrind's cache simulation, about 1,650 more first-level data-cache misses
per 10-query request in the allocator alone (``benchmarks/overhead/README.md``).

A request does not pay for its own packing and marshalling, though: that code
(``struct``, ``zip``, ``marshal``) is cold every time a request runs it once,
on a host whose caches PostgreSQL and the other workers keep evicting, and cost
about 13 µs of a 1-query request's 26 µs of capture there (the benchmark's
in-process cold-cache ablation). The middleware appends the request's fields as
one flat tuple of plain values to a deque; every ``REQUEST_CHUNK`` requests the
pushing thread packs and marshals the chunk in one warm loop, and the flusher
packs what is left before it takes frames. The compiled middleware
(``_speedups``) packs the request itself instead, which costs it well under a
microsecond of C, so that a waiting request holds one tuple and one ``bytes``
rather than its fields, its queries' tuples and their floats. So at most
``REQUEST_CHUNK`` requests wait as objects, for a fraction of a second: plain
values and tuples of them, which the garbage collector stops tracking within three
collections (one per level of tuples). In the benchmark site 20,000 10-query
requests ran 10 young collections, so a request waiting for at most 32 others
rarely meets one. Other
records (measurements, streaming requests, a tuple marshal cannot carry) wait
in a deque.

The flusher drains the buffer every ``FLUSH_INTERVAL`` seconds (or as soon as
``BATCH_SIZE`` records wait), expands records and writes them
(:mod:`perfmonitor.capture.writer`). A failed write keeps its batch, in the
form it reached, for a retry with exponential backoff and jitter: a batch
whose raw rows committed before its rollups failed retries the rollups alone.
Records waiting plus records being retried never exceed ``BUFFER_SIZE``
(give or take one record per thread racing the length check), so while the
database is away new records are dropped and counted. A batch
that fails for a reason other than a lost connection (bad data) is dropped
after ``MAX_DATA_ERROR_ATTEMPTS`` tries, so one bad record cannot wedge the
monitor.

Loss on a hard kill is bounded by one flush interval; a clean exit flushes
(``atexit``, and Celery's ``worker_process_shutdown``). A forked child (gunicorn
and Celery prefork workers) starts with an empty buffer and its own flusher.

With ``SHARED_WRITER`` the flushers of a site's processes on one host elect a
writer, and the others hand it their requests and queries instead of writing
them (:mod:`perfmonitor.capture.sharing`): the writer keeps what it receives
apart from its own records (``_received``) and writes both in one flush.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import socket
import sys
import threading
import time
import weakref
from collections import deque
from typing import Any

from perfmonitor.capture import frames as frame_codec
from perfmonitor.capture import sharing
from perfmonitor.capture.records import NUMBERS, pack_request
from perfmonitor.conf import request_path, settings

logger = logging.getLogger("perfmonitor")

MAX_BACKOFF_SECONDS = 30.0
# The health row: rewritten every HEALTH_INTERVAL_SECONDS while its counters move; an
# idle process's row, unchanged, only every HEALTH_HEARTBEAT_SECONDS, well within
# health.STALE_AFTER, so it still reads as alive (an idle site's flushers would
# otherwise each write a row every few seconds that says nothing new).
HEALTH_INTERVAL_SECONDS = 5.0
HEALTH_HEARTBEAT_SECONDS = 30.0
MAX_PEER_HEALTH = 1000  # senders' health rows a writer holds between two health writes
MAX_DATA_ERROR_ATTEMPTS = 5
BATCHES_PER_WRITE = 10  # one write takes up to BATCH_SIZE * this many records
REQUEST_CHUNK = 32  # requests packed and marshalled together (module docstring)
_frame = frame_codec.frame


class RateLimitedLog:
    """Log a failure at most once per interval, with how many were skipped."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last = -interval
        self._skipped = 0

    def error(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._skipped += 1
            return
        skipped, self._skipped, self._last = self._skipped, 0, now
        suffix = f" ({skipped} similar messages suppressed)" if skipped else ""
        logger.warning(message + suffix, *args)


class ThreadCounter:
    """A counter many threads add to without a lock and without losing updates.

    Each thread adds to its own one-item cell, which only it writes; the value
    is the sum of the cells. A new thread registering its cell (once, under a
    lock) folds the cells of finished threads into a base, so memory follows
    the number of live threads.
    """

    __slots__ = ("_local", "_cells", "_base", "_lock")

    def __init__(self) -> None:
        self._local = threading.local()
        self._cells: list[tuple[weakref.ref[threading.Thread], list[int]]] = []
        self._base = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        cell = getattr(self._local, "cell", None)
        if cell is None:
            cell = self._register()
        cell[0] += n

    def _register(self) -> list[int]:
        cell = [0]
        with self._lock:
            live = []
            for ref, other in self._cells:
                thread = ref()
                if thread is None or not thread.is_alive():
                    self._base += other[0]
                else:
                    live.append((ref, other))
            live.append((weakref.ref(threading.current_thread()), cell))
            self._cells = live
        self._local.cell = cell
        return cell

    @property
    def value(self) -> int:
        with self._lock:
            return self._base + sum(cell[0] for _, cell in self._cells)


class _NoThread:
    """Stands in for the flusher thread when BACKGROUND_FLUSH is off."""

    def is_alive(self) -> bool:
        return False


_NO_THREAD: Any = _NoThread()


def _packed(request: tuple[Any, ...]) -> tuple[Any, ...]:
    """A waiting request as :func:`pack_request` returns it: the Python middleware
    pushes its arguments, the compiled one what it returns (bytes for the numbers)."""
    return request if type(request[NUMBERS]) is bytes else pack_request(*request)


class Buffer:
    def __init__(self, generation: int = 0) -> None:
        self._items: deque[Any] = deque()
        # Plain tuples (requests, queries) wait here as marshal frames, and one byte
        # per record in _marks counts them (see the module docstring).
        self._frames = bytearray()
        self._marks = bytearray()
        # Requests as the middleware finished them, until a chunk is packed into frames.
        self._requests: deque[tuple[Any, ...]] = deque()
        # push_request appends without further checks while fewer requests wait.
        self._fast_until = 0
        self._pending: list[Any] = []  # a batch whose write failed, retried first
        # ... and its prepared form, when it got that far: a retry writes what is left of
        # it (the parts that committed are not written again) instead of expanding anew.
        self._prepared: Any = None
        self._held = 0  # records taken by the flusher and not yet written or dropped
        self._flush_lock = threading.Lock()  # serializes flushes; never taken by push
        self._start_lock = threading.Lock()  # taken once, by the push that starts the thread
        self._wake = threading.Event()
        self._thread: Any = None
        self._generation = generation
        # Records other processes handed over (this process is their writer), as the
        # frames they sent, and how many of the batch being written or retried are
        # theirs (not counted as ours).
        self._received = bytearray()
        self._received_marks = bytearray()
        self._batch_received = 0
        self.received = 0
        self._sharing: sharing.Sharing | None = None  # once the flusher runs
        self._next_flush = 0.0  # monotonic time of the flusher's next wake-up
        self._handover_at: float | None = None  # a sender's next wake-up, set by its writer
        self.started_at = time.time()
        self._taken = 0
        self._dropped = ThreadCounter()
        self._internal_errors = ThreadCounter()
        self.flushed = 0
        self.flush_errors = 0
        self.last_flush_at: float | None = None
        self.last_error = ""
        self.consecutive_failures = 0
        self.failed_attempts: deque[float] = deque(maxlen=32)  # monotonic times, for health
        self._data_error_attempts = 0
        self._next_attempt = 0.0
        self._last_health = -HEALTH_INTERVAL_SECONDS  # last look at the counters
        self._last_health_write = -HEALTH_HEARTBEAT_SECONDS
        self._health_written: tuple[Any, ...] | None = None  # what that write said
        # As the writer: the health rows of the processes that hand it their records,
        # the latest of each, until its next health write (see _maybe_write_health).
        self._peer_health: dict[str, dict[str, Any]] = {}
        self._log = RateLimitedLog()

    # -- request path --------------------------------------------------------
    def push_request(self, fields: tuple[Any, ...]) -> None:
        """A finished request: :func:`~perfmonitor.capture.records.pack_request`'s
        arguments, as one flat tuple of plain values (the queries as a tuple), or
        what it returns for them (the compiled middleware packs its requests).

        Most requests only append: while fewer than ``_fast_until`` requests wait
        unpacked, appending one can neither fill the buffer, nor complete a chunk, nor
        reach ``BATCH_SIZE`` (the full check, :meth:`_push_request_checked`, worked
        that out last time and nothing has taken room since: the flusher only frees
        it, and :meth:`push` and a settings change close the fast path).
        """
        requests = self._requests
        if len(requests) < self._fast_until and request_path.loaded:
            requests.append(fields)
            return
        self._push_request_checked(fields)

    def _push_request_checked(self, fields: tuple[Any, ...]) -> None:
        requests = self._requests
        hot = request_path if request_path.loaded else request_path.load()
        waiting = len(requests) + len(self._marks) + len(self._items)
        if waiting + self._held >= hot.buffer_size:
            self._fast_until = 0
            self._dropped.add()
            return
        requests.append(fields)
        if len(requests) >= REQUEST_CHUNK:
            self._pack_requests(REQUEST_CHUNK)
        if self._thread is None:
            self._start()
        elif waiting >= hot.batch_size and not self._wake.is_set():
            self._wake.set()
        # While fewer requests than this wait unpacked, the next one passes all of the
        # above by appending alone: room for it, no chunk to pack, no flusher to wake.
        others = len(self._marks) + len(self._items)
        self._fast_until = min(REQUEST_CHUNK - 1, hot.buffer_size - others - self._held,
                               hot.batch_size - others)

    def _pack_requests(self, limit: int | None = None) -> None:
        """Pack and marshal up to ``limit`` waiting requests (all by default), each
        ``REQUEST_CHUNK`` of them into one frame (see :mod:`~perfmonitor.capture.frames`).

        Each request is taken with one ``popleft`` (atomic), so threads packing at
        once never take the same one; a frame's marks go in before the frame.
        """
        requests = self._requests
        take = requests.popleft
        left = len(requests) if limit is None else limit
        while left > 0:
            chunk = []
            try:
                for _ in range(min(left, REQUEST_CHUNK)):
                    fields = take()
                    try:
                        chunk.append(_packed(fields))
                    except Exception as exc:  # fields the middleware never builds
                        self.count_internal_error("packing a request", exc)
            except IndexError:
                left = 0
            left -= REQUEST_CHUNK
            if chunk:
                self._add_frame(chunk)

    def _add_frame(self, records: list[tuple[Any, ...]]) -> None:
        """Append plain tuples to the frames as one frame: its marks first, so that
        there are never fewer marks than framed records, then the frame in one
        ``extend`` (atomic, so frames of concurrent threads never interleave). Those
        marshal cannot carry wait as they are, with the other records."""
        try:
            frame = _frame(records)
        except ValueError:
            if len(records) > 1:  # find the odd one out: frame the others one by one
                for record in records:
                    self._add_frame([record])
            else:
                self._items.append(records[0])
            return
        self._marks.extend(bytes(len(records)))
        self._frames.extend(frame)

    def push(self, record: Any) -> None:
        self._fast_until = 0  # this takes room that push_request's fast path counted on
        items, marks = self._items, self._marks
        hot = request_path if request_path.loaded else request_path.load()
        waiting = len(items) + len(marks) + len(self._requests)
        if waiting + self._held >= hot.buffer_size:
            self._dropped.add()
            return
        if type(record) is tuple:  # a plain tuple: a stray query, as the query hook pushes it
            self._add_frame([record])
        else:
            items.append(record)
        if self._thread is None:
            self._start()
        elif waiting >= hot.batch_size and not self._wake.is_set():
            self._wake.set()

    def waiting(self) -> list[Any]:
        """The records waiting to be taken, decoded, without taking them (tests, debugging)."""
        return [*self._items, *frame_codec.decode(bytes(self._frames), sys.maxsize)[0],
                *(_packed(fields) for fields in list(self._requests))]

    def _take_frames(self, frames: bytearray, marks: bytearray, batch: list[Any],
                     limit: int) -> int:
        """Move up to ``limit - len(batch)`` framed records into the batch; return how many.

        Pushers only ever append a mark, then a whole frame (one ``extend``), so a copy
        holds whole frames, and deleting what was read from the front keeps whatever
        was appended meanwhile.
        """
        if not frames or len(batch) >= limit:
            return 0
        records, used, bad = frame_codec.decode(bytes(frames), limit - len(batch))
        del frames[:used]
        del marks[:len(records) + bad]
        if bad:  # only a writer's received frames can hold such (a sender of this user)
            self._internal_errors.add(bad)
        batch.extend(records)
        self._held += len(records)
        return len(records)

    def count_internal_error(self, where: str, exc: BaseException) -> None:
        self._internal_errors.add()
        self._log.error("perfmonitor: internal error in %s: %r", where, exc)

    # -- counters ------------------------------------------------------------
    @property
    def captured(self) -> int:
        """Records accepted into the buffer (written, waiting, or dropped later)."""
        return self._taken + len(self._items) + len(self._marks) + len(self._requests)

    @property
    def dropped(self) -> int:
        """Records lost: buffer full at push, or a batch given up after errors."""
        return self._dropped.value

    @property
    def internal_errors(self) -> int:
        return self._internal_errors.value

    @property
    def retry_in(self) -> float:
        """Seconds until the next attempt after a failed flush (0 when healthy)."""
        return max(0.0, self._next_attempt - time.monotonic()) if self.consecutive_failures else 0.0

    def __len__(self) -> int:
        return (len(self._items) + len(self._marks) + len(self._requests) + self._held
                + len(self._received_marks))

    # -- flusher -------------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            if not settings.BACKGROUND_FLUSH:
                self._thread = _NO_THREAD
                return
            thread = threading.Thread(target=self._run, args=(self._generation, self._wake),
                                      name="perfmonitor-flusher", daemon=True)
            self._sharing = sharing.Sharing()
            self._thread = thread
            try:
                thread.start()
            except RuntimeError as exc:  # can't start new thread: keep serving, drop later
                self._thread = _NO_THREAD
                self.count_internal_error("flusher start", exc)

    def _run(self, generation: int, wake: threading.Event) -> None:
        try:
            while self._generation == generation:
                seconds = self._sleep_seconds()
                self._next_flush = time.monotonic() + seconds
                wake.wait(seconds)
                wake.clear()
                if self._generation != generation:
                    break
                try:
                    self.flush(live=True)
                    if (len(self._items) + len(self._marks) + len(self._requests)
                            >= settings.BATCH_SIZE
                            and not self.consecutive_failures):
                        wake.set()  # more than a batch waits: go again at once
                except Exception as exc:  # flush() guards itself; this is the last line
                    self.count_internal_error("flusher", exc)
        finally:
            _close_thread_connections()

    def _sleep_seconds(self) -> float:
        interval = _flush_interval()
        if self.consecutive_failures:
            return max(0.001, min(self._next_attempt - time.monotonic(), MAX_BACKOFF_SECONDS))
        interval = max(interval, 0.001)
        if self._handover_at is not None:  # just before the writer's flush
            at, self._handover_at = self._handover_at, None
            return min(max(at - time.monotonic(), 0.001), interval)
        return interval

    def flush(self, force: bool = False, live: bool = False) -> int:
        """Drain and write one batch; return rows written. Never raises.

        ``live``: tell the dashboards (channel group ``perfmonitor.live``, topic
        ``metrics``) that new rows arrived; the background flusher does, explicit
        flushes (exit, commands, tests) do not.
        """
        with self._flush_lock:
            if not force and time.monotonic() < self._next_attempt:
                return 0
            batch = self._pending
            self._pending = []
            fresh = not batch
            items = self._items
            limit = max(int(settings.BATCH_SIZE), 1) * BATCHES_PER_WRITE
            if self._requests:
                self._pack_requests()
            # A sender's frames go to the writer; those pushed during the hand-over wait
            # for the next one (not a write of their own).
            handed = (fresh and live and bool(self._frames) and self._sharing is not None
                      and self._hand_over(limit))
            if self._prepared is None and not handed:
                self._taken += self._take_frames(self._frames, self._marks, batch, limit)
            while len(batch) < limit and self._prepared is None:
                try:
                    batch.append(items.popleft())
                except IndexError:
                    break
                self._taken += 1
                self._held += 1
            if self._prepared is None:  # received records come last (see _failed)
                self._batch_received += self._take_frames(self._received,
                                                          self._received_marks, batch, limit)
            if not batch:
                self._maybe_write_health()
                if live:
                    _publish_live(0)
                return 0
            return self._write(batch, live)

    # -- one writer per host (perfmonitor.capture.sharing) -------------------
    def _elect(self) -> str:
        return self._sharing.elect(self._room, self._take_received, self._take_health)

    def _hand_over(self, limit: int) -> bool:
        """As a sender, hand the waiting frames to the writer as they are (not decoded);
        True when it took them.

        What the writer refuses, or all of it when it cannot be reached, stays here
        and this flush writes it.
        """
        if self._elect() != "sender":
            return False
        frames = self._frames
        data = bytes(frames)
        n, used = frame_codec.count(data, limit, sharing.MAX_FRAME_BYTES)
        if not n:
            return False
        next_flush = self._sharing.hand_over(data[:used] if used < len(data) else data)
        if next_flush is None:
            return False
        del frames[:used]
        del self._marks[:n]
        self._handover_at = time.monotonic() + self._next_hand_over(next_flush)
        self._taken += n
        self.flushed += n
        self.last_flush_at = time.time()
        return True

    @staticmethod
    def _next_hand_over(next_flush: float) -> float:
        """Seconds to a sender's next hand-over: just before the writer's next flush.
        When that flush is about to start, what was just handed over goes with it: the
        next hand-over is timed before the flush after (one wake-up per flush of the
        writer, not a second one a moment later for the few records between)."""
        wait = next_flush - sharing.LEAD_SECONDS
        if wait < sharing.LEAD_SECONDS:
            wait += max(_flush_interval(), 0.001)
        return wait

    def _room(self, n: int) -> float | None:
        """As the writer: seconds to the next flush if n more records may come, else None."""
        if (self.consecutive_failures or self._prepared is not None
                or len(self) + n > settings.BUFFER_SIZE):
            return None
        return max(0.0, self._next_flush - time.monotonic())

    def _take_received(self, data: bytes | bytearray, n: int) -> None:
        """As the writer: keep n records another process sent, as their frames."""
        self._received_marks.extend(bytes(n))  # marks first, as push does
        self._received.extend(data)
        self.received += n
        if len(self._received_marks) >= settings.BATCH_SIZE:
            self._wake.set()

    def _take_health(self, data: bytes | bytearray) -> None:
        """As the writer: keep a sender's health row for the next health write."""
        from perfmonitor.capture import health_row

        stats = health_row.unpack_from_sender(data)
        if stats is None:
            self._internal_errors.add(1)
            return
        peers = self._peer_health
        if stats["process"] not in peers and len(peers) >= MAX_PEER_HEALTH:
            with contextlib.suppress(KeyError, StopIteration, RuntimeError):
                del peers[next(iter(peers))]  # memory stays bounded: the oldest goes
        peers[stats["process"]] = stats

    def _write(self, batch: list[Any], live: bool = False) -> int:
        from perfmonitor.capture import writer

        prepared = self._prepared
        try:
            if prepared is None:
                sink, good, failures = writer.expand_records(batch)
                if failures:  # records that cannot expand are dropped, not retried
                    self._internal_errors.add(failures)
                    batch = good
                prepared = writer.prepare(sink)
            own = threading.current_thread() is self._thread
            written = writer.write_batch(prepared, own_connection=own)
        except Exception as exc:
            self._failed(batch, prepared, exc, writer.is_connection_error(exc))
            return 0
        self._prepared = None
        self.flushed += len(batch) - self._batch_received
        self._batch_received = 0
        self._held = 0
        self.consecutive_failures = 0
        self._data_error_attempts = 0
        self._next_attempt = 0.0
        self.last_flush_at = time.time()
        self._maybe_write_health()
        if live:
            _publish_live(written)
        return written

    def _failed(self, batch: list[Any], prepared: Any, exc: Exception,
                connection_error: bool) -> None:
        self.flush_errors += 1
        self.consecutive_failures += 1
        self.failed_attempts.append(time.monotonic())
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if not connection_error:
            self._data_error_attempts += 1
            if self._data_error_attempts >= MAX_DATA_ERROR_ATTEMPTS:
                self._dropped.add(len(batch))
                self._log.error("perfmonitor: dropped a batch of %d records after %d failed "
                                "writes (%s)", len(batch), self._data_error_attempts,
                                self.last_error)
                batch, prepared = [], None
                self._data_error_attempts = 0
        overflow = (len(batch) + len(self._items) + len(self._marks) + len(self._requests)
                    - settings.BUFFER_SIZE)
        if overflow > 0:  # oldest first; a prepared batch goes whole
            if prepared is not None:
                overflow, prepared = len(batch), None
            self._dropped.add(overflow)
            batch = batch[overflow:]
        self._batch_received = min(self._batch_received, len(batch))  # received ones come last
        self._pending = batch
        self._prepared = prepared if batch else None  # nothing left to stand for
        self._held = len(batch)
        interval = _flush_interval()
        delay = min(MAX_BACKOFF_SECONDS, interval * 2 ** min(self.consecutive_failures, 20))
        delay *= random.uniform(0.9, 1.1)  # processes that failed together retry apart
        self._next_attempt = time.monotonic() + delay
        self._log.error("perfmonitor: flush failed (%s); retrying in %.1fs", self.last_error,
                        delay)

    def _maybe_write_health(self, force: bool = False) -> None:
        """Every HEALTH_INTERVAL_SECONDS, this process's health row (when its counters
        moved or the heartbeat is due) and those its senders handed over, in one write;
        a sender hands its own to the writer instead of writing it."""
        now = time.monotonic()
        if not force and now - self._last_health < HEALTH_INTERVAL_SECONDS:
            return
        self._last_health = now
        stats = self.stats()
        said = tuple(value for key, value in stats.items() if key != "retry_in")
        if (not force and said == self._health_written and not self._peer_health
                and now - self._last_health_write < HEALTH_HEARTBEAT_SECONDS):
            return
        peers = self._take_peer_health()
        try:
            from perfmonitor.capture import health_row

            if force or peers or not self._health_to_writer(stats, health_row):
                health_row.write_health(stats, peers)
        except Exception as exc:
            self._health_written = None
            for peer in peers:  # unless a newer one came meanwhile
                self._peer_health.setdefault(peer["process"], peer)
            self._log.error("perfmonitor: could not record health: %r", exc)
        else:
            self._health_written = said
            self._last_health_write = now

    def _take_peer_health(self) -> list[dict[str, Any]]:
        peers = []
        while self._peer_health:  # popitem: the receiver thread may add one meanwhile
            try:
                peers.append(self._peer_health.popitem()[1])
            except KeyError:
                break
        return peers

    def _health_to_writer(self, stats: dict[str, Any], health_row: Any) -> bool:
        """As a sender, hand this process's health row to the writer; True if it took it."""
        if self._sharing is None or self._elect() != "sender":  # (an idle one elects here)
            return False
        health = health_row.pack_for_writer(stats, time.time())
        return self._sharing.hand_over(b"", health) is not None

    def write_health(self) -> None:
        """Record this process's counters now (commands, exit, tests)."""
        with self._flush_lock:
            self._maybe_write_health(force=True)

    def stats(self) -> dict[str, Any]:
        return {
            "process": process_name(), "captured": self.captured, "flushed": self.flushed,
            "dropped": self.dropped, "flush_errors": self.flush_errors,
            "internal_errors": self.internal_errors, "buffer_size": len(self),
            "last_flush_at": self.last_flush_at, "last_error": self.last_error,
            "started_at": self.started_at, "consecutive_failures": self.consecutive_failures,
            "retry_in": round(self.retry_in, 3), "flusher_alive": self.flusher_alive,
            "shared_role": self._sharing.role if self._sharing is not None else "",
            "received": self.received,
        }

    @property
    def flusher_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the flusher thread (it closes its connection) and wait for it.

        A writer first stops taking other processes' records, so that what it holds
        is all a final flush has to write.
        """
        thread = self._thread
        self._generation += 1
        self._wake.set()
        sharing = self._sharing
        if sharing is not None:
            try:
                sharing.close(timeout)
            except Exception as exc:
                self.count_internal_error("sharing", exc)
        if (timeout and isinstance(thread, threading.Thread) and thread.is_alive()
                and thread is not threading.current_thread()):
            thread.join(timeout)

    def reset(self, join: bool = True) -> None:
        """Forget everything: in tests, and after fork.

        After fork (``join=False``) the old thread, locks and event belong to the
        parent and may have been held at the moment of the fork: they are
        replaced, never touched.
        """
        if join:
            self.stop()
        elif self._sharing is not None:
            with contextlib.suppress(Exception):
                self._sharing.abandon()
        self.__init__(generation=self._generation + 1)  # type: ignore[misc]
        writer = sys.modules.get("perfmonitor.capture.writer")
        if writer is not None:
            writer.forget_known_fingerprints()  # re-inserting one is a no-op conflict


def _flush_interval() -> float:
    """FLUSH_INTERVAL in seconds; 1.0 when the setting cannot be read (the checks report
    a bad value: the flusher goes on)."""
    try:
        return float(settings.FLUSH_INTERVAL)
    except Exception:
        return 1.0


def _close_thread_connections() -> None:
    try:
        from django.db import connections

        connections.close_all()  # this thread's connections only
    except Exception:
        pass
    try:
        from perfmonitor.live import close_thread_loop

        close_thread_loop()  # and its connections to the channel layer
    except Exception:
        pass


def _publish_live(rows: int) -> None:
    """Tell live dashboards that rows arrived; with none, send what the throttle held back."""
    try:
        from perfmonitor import live

        if rows:
            live.publish("metrics", {"rows": rows})
        else:
            live.publish_pending()
    except Exception:
        pass


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


buffer = Buffer()


def push(record: Any) -> None:
    """Append a record for the flusher; never raises into the caller."""
    try:
        buffer.push(record)
    except Exception as exc:
        buffer.count_internal_error("push", exc)


def flush_now(health: bool = False) -> int:
    """Write everything buffered, in the calling thread (tests, shutdown, commands).

    Stops at the first failed write (the records stay buffered for a retry).
    Returns the number of rows written.
    """
    written = 0
    while len(buffer):
        errors = buffer.flush_errors
        written += buffer.flush(force=True)
        if buffer.flush_errors != errors:
            break
    if health:
        buffer.write_health()
    return written


def _flush_at_exit() -> None:
    try:
        buffer.stop(timeout=2.0)
        if len(buffer) or buffer.captured:
            flush_now(health=True)
    except Exception:
        pass


def _reset_after_fork() -> None:
    buffer.reset(join=False)


atexit.register(_flush_at_exit)
os.register_at_fork(after_in_child=_reset_after_fork)
