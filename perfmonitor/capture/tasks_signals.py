"""Attribute queries run inside Celery tasks to the task, and time the task.

Connected to Celery's own signals (``task_prerun`` / ``task_postrun`` /
``task_failure``), which fire in the thread that runs the task, for every pool
and for ``Task.apply()``. A worker process flushes its buffer when it shuts
down (prefork children exit without running ``atexit``).
"""

from __future__ import annotations

from typing import Any

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.tracking import Unit

# task_id -> its running unit; a failure name noted by task_failure.
_running: dict[str, Unit] = {}
_failures: dict[str, str] = {}


def task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    try:
        if task is None or task_id is None:
            return
        _running[task_id] = Unit(getattr(task, "name", "") or "task").begin()
    except Exception as exc:
        buffer_module.buffer.count_internal_error("task_prerun", exc)


def task_failed(task_id: str | None = None, exception: BaseException | None = None,
                **kwargs: Any) -> None:
    if task_id in _running and exception is not None:
        _failures[task_id] = type(exception).__name__


def task_finished(task_id: str | None = None, task: Any = None, state: str | None = None,
                  **kwargs: Any) -> None:
    try:
        unit = _running.pop(task_id or "", None)
        failure = _failures.pop(task_id or "", "")
        if unit is None:
            return
        if not failure and state == "FAILURE":
            failure = "FAILURE"
        unit.end(failure)  # RETRY and REJECTED are not failures of the task's code
    except Exception as exc:
        buffer_module.buffer.count_internal_error("task_postrun", exc)


def flush_on_shutdown(**kwargs: Any) -> None:
    try:
        buffer_module.buffer.stop(timeout=2.0)
        buffer_module.flush_now(health=True)
        from django.db import connections

        connections.close_all()  # this thread's; the process is going away
    except Exception as exc:
        buffer_module.buffer.count_internal_error("worker shutdown", exc)


def connect() -> None:
    try:
        from celery import signals
    except ImportError:  # Celery is optional for capture
        return
    signals.task_prerun.connect(task_started, dispatch_uid="perfmonitor.task_prerun")
    signals.task_postrun.connect(task_finished, dispatch_uid="perfmonitor.task_postrun")
    signals.task_failure.connect(task_failed, dispatch_uid="perfmonitor.task_failure")
    signals.worker_process_shutdown.connect(flush_on_shutdown,
                                            dispatch_uid="perfmonitor.worker_process_shutdown")
    signals.worker_shutdown.connect(flush_on_shutdown, dispatch_uid="perfmonitor.worker_shutdown")
