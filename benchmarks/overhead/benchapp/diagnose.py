"""Diagnostic variants of perfmonitor's flusher, for taking its cost apart.

Set ``BENCH_PERFMONITOR_DIAG`` to one of the modes below (perfmonitor profile only;
``benchapp.apps`` applies it when Django starts). Each changes one thing, so a
paired run of it against bare shows what that thing costs (README, "Taking
perfmonitor apart"). Never for the targets: they are measured at the defaults.

- ``drain``: the flusher takes the buffered records once a second and frees them;
  nothing is expanded or written.
- ``tiny``: as ``drain``, but each request buffers a 2-tuple of shared strings (its
  method and route) instead of its record.
- ``none``: nothing is buffered (requests, stray queries); the flusher thread still runs.
- ``expand``: the flusher expands each batch into a Sink and drops it.
- ``prepare``: as ``expand``, then makes the COPY data (rollups, sketches, raw rows),
  and drops it.
- ``rollups``: as ``expand``, then computes the rollups and their sketches.
- ``noyield``: the full flush, but it never pauses to let request threads in.
- ``numpy-sketches``: the full flush, every batch's sketches built with numpy (as
  before small batches were built value by value).
- ``timing``: the full flush, each of its parts timed with the thread's CPU clock
  (nested parts counted in their own line and in their caller's), written per
  process to ``$BENCH_FLUSH_TIMING/timing-<pid>.json`` at exit and on SIGUSR2;
  ``python benchapp/diagnose.py <that directory>`` prints them.
- ``between``: the full flush, but the flusher waits (up to half a second) until no
  request is in progress in its process (Django's request_started and
  request_finished signals count them).
"""

from __future__ import annotations

import os
from typing import Any

MODES = ("drain", "tiny", "none", "expand", "prepare", "rollups", "noyield", "numpy-sketches",
         "between", "timing")


def _time_flush_parts() -> None:
    import atexit
    import json
    import signal
    import time

    from perfmonitor.capture import buffer, sharing, writer

    spent: dict[str, list[float]] = {}  # label -> each call's CPU seconds
    directory = os.environ.get("BENCH_FLUSH_TIMING", "/tmp")

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent.setdefault(label, []).append(time.thread_time() - began)

        setattr(owner, name, wrapper)

    parts = [  # (owner, attribute, label): a label's slashes show what it is part of
        (buffer.Buffer, "flush", "flush"),
        (buffer.Buffer, "_hand_over", "flush/hand over (sender)"),
        (buffer.Buffer, "_take_frames", "flush/take frames"),
        (buffer.Buffer, "_pack_requests", "pack requests (any thread)"),
        (buffer.Buffer, "_maybe_write_health", "flush/health"),
        (buffer, "_publish_live", "flush/live notice"),
        (buffer.Buffer, "_write", "flush/write batch"),
        (writer, "expand_records", "flush/write batch/expand"),
        (writer, "prepare", "flush/write batch/prepare"),
        (writer.Sink, "rollups", "flush/write batch/prepare/rollups"),
        (writer, "compress", "flush/write batch/prepare/rollups/sketch compress"),
        (writer, "rollup_copy_chunks", "flush/write batch/prepare/rollup rows"),
        (writer, "binary_copy_chunks", "flush/write batch/prepare/raw rows"),
        (writer, "write_batch", "flush/write batch/COPY"),
        (writer, "_copy_raw", "flush/write batch/COPY/raw"),
        (writer, "_copy_rollups", "flush/write batch/COPY/rollups"),
        (sharing.Writer, "_serve", "receiver: serve a sender"),
    ]
    for owner, name, label in parts:
        timed(owner, name, label)

    def dump(*_: Any) -> None:
        path = os.path.join(directory, f"timing-{os.getpid()}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"pid": os.getpid(), "at": time.time(), "spent": spent}, handle)

    atexit.register(dump)
    signal.signal(signal.SIGUSR2, dump)


def _flush_between_requests() -> None:
    import threading

    from django.core.signals import request_finished, request_started

    from perfmonitor.capture import buffer

    idle = threading.Event()
    idle.set()
    in_flight = [0]

    def started(**kwargs: Any) -> None:
        in_flight[0] += 1
        idle.clear()

    def finished(**kwargs: Any) -> None:
        in_flight[0] = max(in_flight[0] - 1, 0)
        if not in_flight[0]:
            idle.set()

    request_started.connect(started, weak=False)
    request_finished.connect(finished, weak=False)
    original_flush = buffer.Buffer.flush

    def flush(self: Any, force: bool = False, live: bool = False) -> int:
        if live:
            idle.wait(0.5)
        return original_flush(self, force, live)

    buffer.Buffer.flush = flush


def apply(mode: str) -> None:
    if mode not in MODES:
        raise RuntimeError(f"BENCH_PERFMONITOR_DIAG={mode!r} is not one of {', '.join(MODES)}")
    from perfmonitor.capture import buffer, writer

    if mode == "noyield":
        writer.YIELD_AFTER_SECONDS = 3600.0
        return
    if mode == "numpy-sketches":
        writer.SMALL_BATCH_VALUES = 0
        return
    if mode == "between":
        _flush_between_requests()
        return
    if mode == "timing":
        _time_flush_parts()
        return
    original_push = buffer.Buffer.push

    def drop_batch(self: Any, batch: list[Any], live: bool = False) -> int:
        if mode in ("expand", "prepare", "rollups"):
            sink, _, _ = writer.expand_records(batch)
            if mode == "prepare":
                writer.prepare(sink)
            elif mode == "rollups":
                sink.rollups()
        self.flushed += len(batch)
        self._held = 0
        return 0

    def push_tiny(self: Any, record: Any) -> None:
        original_push(self, (record[0], record[1]))

    def push_none(self: Any, record: Any) -> None:
        if self._thread is None:
            self._start()
        self._fast_until = 0  # so that the compiled middleware calls push_request too

    buffer.Buffer._write = drop_batch
    if mode == "tiny":
        buffer.Buffer.push = push_tiny
    elif mode == "none":
        buffer.Buffer.push = buffer.Buffer.push_request = push_none


def apply_from_environment() -> None:
    mode = os.environ.get("BENCH_PERFMONITOR_DIAG")
    if mode and os.environ.get("BENCH_PROFILE") == "perfmonitor":
        apply(mode)


def report_timing(directory: str, skip: int = 3) -> None:
    """Print what ``timing`` wrote: per process and part, calls, then the median and mean
    CPU of a call after the first ``skip`` (a process's first flushes import and warm)."""
    import glob
    import json
    import statistics

    for path in sorted(glob.glob(os.path.join(directory, "timing-*.json"))):
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not data["spent"]:
            continue
        print(f"process {data['pid']}")
        for label, calls in sorted(data["spent"].items()):
            steady = [seconds * 1e6 for seconds in calls[skip:]] or [0.0]
            print(f"  {label:52} {len(calls):5} calls  median {statistics.median(steady):6.0f}"
                  f" µs  mean {statistics.fmean(steady):6.0f} µs")


if __name__ == "__main__":  # python benchapp/diagnose.py <BENCH_FLUSH_TIMING directory>
    import sys

    report_timing(sys.argv[1])
