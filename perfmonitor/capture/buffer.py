"""The bounded in-process buffer and its background flusher.

``push`` is the only thing the request path calls: an append to a deque, a
length check and, once per process, starting the flusher thread. The flusher
drains the buffer every ``FLUSH_INTERVAL`` seconds (or as soon as
``BATCH_SIZE`` records wait), expands records and writes them. A failed write
keeps its batch for a retry with exponential backoff; when the retries would
push memory past ``BUFFER_SIZE`` the oldest records are dropped and counted.

Loss on a hard kill is bounded by one flush interval; a clean exit flushes.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from perfmonitor.conf import settings

logger = logging.getLogger("perfmonitor")

MAX_BACKOFF_SECONDS = 30.0
HEALTH_INTERVAL_SECONDS = 5.0


class RateLimitedLog:
    """Log a failure at most once per interval, with how many were skipped."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last = 0.0
        self._skipped = 0

    def error(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._skipped += 1
            return
        skipped, self._skipped, self._last = self._skipped, 0, now
        suffix = f" ({skipped} similar messages suppressed)" if skipped else ""
        logger.warning(message + suffix, *args)


class Buffer:
    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._pending: list[Any] = []  # a batch whose write failed, retried first
        self._lock = threading.Lock()  # serializes flushes, never taken by push
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = False
        self.started_at = time.time()
        self.captured = 0
        self.flushed = 0
        self.dropped = 0
        self.flush_errors = 0
        self.internal_errors = 0
        self.last_flush_at: float | None = None
        self.last_error = ""
        self._failures_in_row = 0
        self._next_attempt = 0.0
        self._last_health = 0.0
        self._log = RateLimitedLog()

    # -- request path --------------------------------------------------------
    def push(self, record: Any) -> None:
        items = self._items
        if len(items) + len(self._pending) >= settings.BUFFER_SIZE:
            self.dropped += 1
            return
        items.append(record)
        self.captured += 1
        if self._thread is None:
            self._start()
        elif len(items) >= settings.BATCH_SIZE:
            self._wake.set()

    def count_internal_error(self, where: str, exc: BaseException) -> None:
        self.internal_errors += 1
        self._log.error("perfmonitor: internal error in %s: %r", where, exc)

    def __len__(self) -> int:
        return len(self._items) + len(self._pending)

    # -- flusher -------------------------------------------------------------
    def _start(self) -> None:
        if not settings.BACKGROUND_FLUSH:
            self._thread = _NO_THREAD
            return
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="perfmonitor-flusher", daemon=True)
            self._thread = thread
            thread.start()

    def _run(self) -> None:
        from django.db import close_old_connections

        while not self._stop:
            self._wake.wait(settings.FLUSH_INTERVAL)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # flush() already guards; this is the last line
                self.count_internal_error("flusher", exc)
            close_old_connections()

    def flush(self, force: bool = False) -> int:
        """Drain and write; returns rows written. Never raises."""
        with self._lock:
            if not force and time.monotonic() < self._next_attempt:
                return 0
            batch = self._pending
            self._pending = []
            items = self._items
            limit = max(settings.BATCH_SIZE, 1) * 10
            while items and len(batch) < limit:
                batch.append(items.popleft())
            if not batch:
                self._maybe_write_health()
                return 0
            return self._write(batch)

    def _write(self, batch: list[Any]) -> int:
        from django.db import connections, router

        from perfmonitor.capture import writer
        from perfmonitor.models import MetricRollup

        try:
            sink, failures = writer.expand(batch)
            self.internal_errors += failures
            written = writer.write(sink)
        except Exception as exc:
            self.flush_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            self._failures_in_row += 1
            delay = min(MAX_BACKOFF_SECONDS, settings.FLUSH_INTERVAL * 2 ** self._failures_in_row)
            self._next_attempt = time.monotonic() + delay
            overflow = len(batch) + len(self._items) - settings.BUFFER_SIZE
            if overflow > 0:
                self.dropped += overflow
                batch = batch[overflow:]
            self._pending = batch
            self._log.error("perfmonitor: flush failed (%s); retrying in %.1fs",
                            self.last_error, delay)
            try:
                connections[router.db_for_write(MetricRollup)].close()
            except Exception:
                pass
            return 0
        self._failures_in_row = 0
        self._next_attempt = 0.0
        self.flushed += len(batch)
        self.last_flush_at = time.time()
        self._maybe_write_health()
        return written

    def _maybe_write_health(self) -> None:
        now = time.monotonic()
        if now - self._last_health < HEALTH_INTERVAL_SECONDS:
            return
        self._last_health = now
        try:
            write_health(self)
        except Exception as exc:
            self._log.error("perfmonitor: could not record health: %r", exc)

    def stats(self) -> dict[str, Any]:
        return {
            "process": process_name(), "captured": self.captured, "flushed": self.flushed,
            "dropped": self.dropped, "flush_errors": self.flush_errors,
            "internal_errors": self.internal_errors, "buffer_size": len(self),
            "last_flush_at": self.last_flush_at, "last_error": self.last_error,
            "started_at": self.started_at,
        }

    def reset(self) -> None:
        """Forget everything (after fork, and in tests)."""
        self.__init__()  # type: ignore[misc]

    def stop(self) -> None:
        self._stop = True
        self._wake.set()


class _NoThread:
    """Stands in for the flusher thread when BACKGROUND_FLUSH is off."""


_NO_THREAD: Any = _NoThread()


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def write_health(buf: Buffer) -> None:
    from perfmonitor.capture.context import capture_suppressed
    from perfmonitor.models import MonitorHealth

    stats = buf.stats()
    with capture_suppressed():
        MonitorHealth.objects.update_or_create(
            process=stats["process"],
            defaults={
                "started_at": datetime.fromtimestamp(stats["started_at"], tz=UTC),
                "updated_at": datetime.now(tz=UTC),
                "captured": stats["captured"], "flushed": stats["flushed"],
                "dropped": stats["dropped"], "flush_errors": stats["flush_errors"],
                "internal_errors": stats["internal_errors"],
                "buffer_size": stats["buffer_size"],
                "last_flush_at": datetime.fromtimestamp(stats["last_flush_at"], tz=UTC)
                if stats["last_flush_at"] else None,
                "last_error": stats["last_error"],
            },
        )


buffer = Buffer()


def push(record: Any) -> None:
    """Append a record for the flusher; never raises into the caller."""
    try:
        buffer.push(record)
    except Exception as exc:
        buffer.count_internal_error("push", exc)


def flush_now() -> int:
    """Write everything buffered, in the calling thread (tests, shutdown, commands)."""
    written = 0
    while len(buffer):
        step = buffer.flush(force=True)
        if step == 0 and buffer._pending:
            break
        written += step
    return written


def _flush_at_exit() -> None:
    try:
        buffer.stop()
        if len(buffer):
            flush_now()
    except Exception:
        pass


def _reset_after_fork() -> None:
    buffer.reset()


atexit.register(_flush_at_exit)
os.register_at_fork(after_in_child=_reset_after_fork)
