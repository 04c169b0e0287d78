"""Attribute queries run inside Celery tasks to the task, and time the task."""

from __future__ import annotations

import time
from typing import Any

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.context import CaptureContext, current, suppressed
from perfmonitor.capture.records import TaskRecord
from perfmonitor.conf import settings

_running: dict[str, tuple[CaptureContext, Any, float, float]] = {}


def task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    try:
        if not settings.ENABLED or task is None or task_id is None:
            return
        name = getattr(task, "name", "") or ""
        if name.startswith("perfmonitor."):
            # perfmonitor's own work is never captured.
            _running[task_id] = (None, suppressed.set(True), 0.0, 0.0)  # type: ignore[assignment]
            return
        ctx = CaptureContext(settings.MAX_QUERIES_TRACKED_PER_REQUEST)
        _running[task_id] = (ctx, current.set(ctx), time.time(), time.perf_counter())
    except Exception as exc:
        buffer_module.buffer.count_internal_error("task_prerun", exc)


def task_finished(task_id: str | None = None, task: Any = None, state: str | None = None,
                  **kwargs: Any) -> None:
    try:
        entry = _running.pop(task_id or "", None)
        if entry is None:
            return
        ctx, token, wall, start = entry
        if ctx is None:
            suppressed.reset(token)
            return
        current.reset(token)
        buffer_module.push(TaskRecord(
            name=getattr(task, "name", "") or "task", kind="task", ts=wall,
            duration_ms=(time.perf_counter() - start) * 1000.0,
            queries=ctx.queries, overflow=ctx.overflow, query_count=ctx.query_count,
            query_time_ms=ctx.query_time_ms,
            exception=ctx.exception or ("" if state in (None, "SUCCESS") else str(state)),
        ))
    except Exception as exc:
        buffer_module.buffer.count_internal_error("task_postrun", exc)


def task_failed(task_id: str | None = None, exception: BaseException | None = None,
                **kwargs: Any) -> None:
    entry = _running.get(task_id or "")
    if entry and entry[0] is not None and exception is not None:
        entry[0].exception = type(exception).__name__


def connect() -> None:
    try:
        from celery import signals
    except ImportError:  # Celery is optional for capture
        return
    signals.task_prerun.connect(task_started, dispatch_uid="perfmonitor.task_prerun")
    signals.task_postrun.connect(task_finished, dispatch_uid="perfmonitor.task_postrun")
    signals.task_failure.connect(task_failed, dispatch_uid="perfmonitor.task_failure")
