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
"""

from __future__ import annotations

import os
from typing import Any

MODES = ("drain", "tiny", "none", "expand", "prepare", "rollups", "noyield", "numpy-sketches")


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
