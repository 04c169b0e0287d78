"""Units of work outside requests: Celery tasks and blocks wrapped in ``track``.

A unit gets its own capture context, so its queries are attributed to
``task:<name>`` (not to a request or to the process) and its duration feeds
the ``task`` rollup series. perfmonitor's own units capture nothing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from contextvars import Token
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.context import SUPPRESSED, CaptureContext, current
from perfmonitor.capture.records import NO_OVERFLOW, TaskRecord
from perfmonitor.conf import settings

F = TypeVar("F", bound=Callable[..., Any])
OWN_PREFIX = "perfmonitor."


class Unit:
    """One running unit of work: begin() when it starts, end() when it ends. Never raises."""

    __slots__ = ("name", "ctx", "token", "suppress_token", "wall", "start")

    def __init__(self, name: str) -> None:
        self.name = name
        self.ctx: CaptureContext | None = None
        self.token: Token[CaptureContext | None] | None = None
        self.suppress_token: Token[CaptureContext | None] | None = None
        self.wall = 0.0
        self.start = 0.0

    def begin(self) -> Unit:
        try:
            if self.name.startswith(OWN_PREFIX):
                self.suppress_token = current.set(SUPPRESSED)  # perfmonitor's own work
            elif settings.ENABLED and current.get() is not SUPPRESSED:
                self.ctx = CaptureContext(settings.MAX_QUERIES_TRACKED_PER_REQUEST)
                self.token = current.set(self.ctx)
                self.wall = time.time()
                self.start = time.perf_counter()
        except Exception as exc:
            buffer_module.buffer.count_internal_error("track", exc)
        return self

    def end(self, exception: str = "") -> None:
        try:
            if self.suppress_token is not None:
                current.reset(self.suppress_token)
                self.suppress_token = None
            if self.ctx is None or self.token is None:
                return
            ctx, token, self.ctx, self.token = self.ctx, self.token, None, None
            try:
                current.reset(token)
            except ValueError:  # ended in another context than it began: still record it
                current.set(None)
            buffer_module.push(TaskRecord(
                name=self.name, kind="task", ts=self.wall,
                duration_ms=(time.perf_counter() - self.start) * 1000.0,
                queries=ctx.queries, overflow=ctx.overflow or NO_OVERFLOW,
                exception=exception or ctx.exception,
            ))
        except Exception as exc:
            buffer_module.buffer.count_internal_error("track", exc)


class track:  # noqa: N801  (used like a function: ``with track("name"):`` / ``@track("name")``)
    """Measure a block or function as a unit of work named ``name``.

    Its queries are attributed to ``task:<name>`` and its duration and failures
    feed the ``task`` series, like a Celery task's::

        with track("nightly-import"):
            import_everything()

        @track("rebuild-search-index")
        def rebuild(): ...
    """

    def __init__(self, name: str) -> None:
        self.name = str(name)
        self._units: list[Unit] = []

    def __enter__(self) -> track:
        self._units.append(Unit(self.name).begin())
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        unit = self._units.pop()
        unit.end(type(exc).__name__ if exc is not None else "")

    def __call__(self, func: F) -> F:
        name = self.name
        if iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with track(name):
                    return await func(*args, **kwargs)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with track(name):
                return func(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
