"""A journey as a block of code: the ``track`` context manager and ``tracked`` decorator.

    with journeys.track("report_generation", user=request.user) as journey:
        journey.step("report_requested")
        ...
        journey.step("report_rendered")
    # completed here; an exception fails it at the last step reached, then propagates

    @journeys.tracked("dashboard_loading", user=lambda request: request.user)
    def dashboard(request):
        journeys.current().step("request_received")
        ...

Both work for ``async def`` code too (``async with journeys.atrack(...)``; the
decorator detects coroutine functions). ``journeys.current()`` is the journey
of the innermost enclosing block (a ContextVar, so threads and tasks are kept
apart).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from asgiref.sync import sync_to_async

from perfmonitor.journeys import tracker
from perfmonitor.journeys.definitions import get_definition

F = TypeVar("F", bound=Callable[..., Any])

_current: ContextVar[Journey | None] = ContextVar("perfmonitor_journey", default=None)


class Journey:
    """Handle on one running journey; remembers the last step reached."""

    def __init__(self, journey_type: str, journey_id: str) -> None:
        self.type = journey_type
        self.id = journey_id
        self.last_step: str | None = None
        self.ended = False

    def step(self, name: str, metadata: dict[str, Any] | None = None) -> bool:
        get_definition(self.type).step_index(name)  # unknown step: raise before any I/O
        self.last_step = name
        return tracker.step(self.id, name, metadata)

    def complete(self) -> bool:
        self.ended = True
        return tracker.complete(self.id)

    def fail(self, step: str | None = None, reason: str = "") -> bool:
        self.ended = True
        return tracker.fail(self.id, step or self._failed_at(), reason)

    def abandon(self, reason: str) -> bool:
        self.ended = True
        return tracker.abandon(self.id, reason)

    def _failed_at(self) -> str:
        return self.last_step or get_definition(self.type).steps[0].name

    def _close(self, exc: BaseException | None) -> None:
        if self.ended:
            return
        if exc is None:
            self.complete()
        else:
            self.fail(reason=type(exc).__name__)

    def __repr__(self) -> str:
        return f"<Journey {self.type} {self.id}>"


def current() -> Journey | None:
    """The journey of the innermost ``track`` block or ``tracked`` function, if any."""
    return _current.get()


@contextmanager
def track(journey_type: str, user: Any = None, session: str | None = None,
          metadata: dict[str, Any] | None = None) -> Iterator[Journey]:
    """Start a journey; complete it on normal exit, fail it on an exception (re-raised)."""
    journey = Journey(journey_type, tracker.start(journey_type, user, session, metadata))
    token = _current.set(journey)
    try:
        yield journey
    except BaseException as exc:
        journey._close(exc)
        raise
    else:
        journey._close(None)
    finally:
        _current.reset(token)


class AsyncJourney(Journey):
    """The same handle for async code: its methods are awaitables."""

    async def step(self, name: str, metadata: dict[str, Any] | None = None) -> bool:  # type: ignore[override]
        get_definition(self.type).step_index(name)
        self.last_step = name
        return await sync_to_async(tracker.step)(self.id, name, metadata)

    async def complete(self) -> bool:  # type: ignore[override]
        self.ended = True
        return await sync_to_async(tracker.complete)(self.id)

    async def fail(self, step: str | None = None, reason: str = "") -> bool:  # type: ignore[override]
        self.ended = True
        return await sync_to_async(tracker.fail)(self.id, step or self._failed_at(), reason)

    async def abandon(self, reason: str) -> bool:  # type: ignore[override]
        self.ended = True
        return await sync_to_async(tracker.abandon)(self.id, reason)

    async def _aclose(self, exc: BaseException | None) -> None:
        if self.ended:
            return
        if exc is None:
            await self.complete()
        else:
            await self.fail(reason=type(exc).__name__)


@asynccontextmanager
async def atrack(journey_type: str, user: Any = None, session: str | None = None,
                 metadata: dict[str, Any] | None = None) -> AsyncIterator[AsyncJourney]:
    """``track`` for async code."""
    get_definition(journey_type)
    journey_id = await sync_to_async(tracker.start)(journey_type, user, session, metadata)
    journey = AsyncJourney(journey_type, journey_id)
    token = _current.set(journey)
    try:
        yield journey
    except BaseException as exc:
        await journey._aclose(exc)
        raise
    else:
        await journey._aclose(None)
    finally:
        _current.reset(token)


def _resolve(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return value(*args, **kwargs) if callable(value) else value


def tracked(journey_type: str, *, user: Any = None, session: Any = None,
            metadata: Any = None) -> Callable[[F], F]:
    """Run the decorated function as one journey (``journeys.current()`` inside).

    ``user``, ``session`` and ``metadata`` may be values or callables that get
    the function's own arguments, e.g. ``user=lambda request, *a, **k: request.user``.
    """
    get_definition(journey_type)  # an unknown type fails at import time, not per call

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with atrack(journey_type, _resolve(user, args, kwargs),
                                  _resolve(session, args, kwargs),
                                  _resolve(metadata, args, kwargs)):
                    return await func(*args, **kwargs)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with track(journey_type, _resolve(user, args, kwargs),
                       _resolve(session, args, kwargs), _resolve(metadata, args, kwargs)):
                return func(*args, **kwargs)
        return wrapper  # type: ignore[return-value]

    return decorate
