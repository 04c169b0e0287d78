"""PerformanceMiddleware: times every request, sync or async, without I/O.

Place it first in ``MIDDLEWARE`` (or right after ``SecurityMiddleware``) so the
queries of the session and authentication middleware are counted too; the
system checks warn when it sits below them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture.context import CaptureContext, current
from perfmonitor.capture.records import RequestRecord
from perfmonitor.conf import settings

_perf = time.perf_counter
UNRESOLVED_ROUTE = "<unresolved>"


def _ignored(request: HttpRequest) -> bool:
    if not settings.ENABLED:
        return True
    return request.path.startswith(tuple(settings.IGNORE_PATHS))


def _route_and_view(request: HttpRequest) -> tuple[str, str, bool]:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNRESOLVED_ROUTE, "", False
    route = match.route or ""
    route = "/" + route if not route.startswith("/") else route
    func = match.func
    skip = bool(getattr(func, "perfmonitor_ignore", False) or
                getattr(getattr(func, "cls", None), "perfmonitor_ignore", False))
    return route, match.view_name or match._func_path, skip


def _user_id(request: HttpRequest) -> str:
    # Only a user the host already loaded: touching request.user would run a query.
    user = getattr(request, "_cached_user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return str(user.pk)


class PerformanceMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        if _ignored(request):
            return self.get_response(request)
        ctx = CaptureContext(settings.MAX_QUERIES_TRACKED_PER_REQUEST)
        token = current.set(ctx)
        wall = time.time()
        start = _perf()
        try:
            response = self.get_response(request)
        except BaseException as exc:
            ctx.exception = ctx.exception or type(exc).__name__
            self._finish(request, None, ctx, wall, start)
            raise
        finally:
            current.reset(token)
        return self._finish(request, response, ctx, wall, start)

    async def __acall__(self, request: HttpRequest) -> Any:
        if _ignored(request):
            return await self.get_response(request)
        ctx = CaptureContext(settings.MAX_QUERIES_TRACKED_PER_REQUEST)
        token = current.set(ctx)
        wall = time.time()
        start = _perf()
        try:
            response = await self.get_response(request)
        except BaseException as exc:
            ctx.exception = ctx.exception or type(exc).__name__
            self._finish(request, None, ctx, wall, start)
            raise
        finally:
            current.reset(token)
        return self._finish(request, response, ctx, wall, start)

    def process_exception(self, request: HttpRequest, exception: BaseException) -> None:
        ctx = current.get()
        if ctx is not None:
            ctx.exception = type(exception).__name__

    def _finish(self, request: HttpRequest, response: HttpResponseBase | None,
                ctx: CaptureContext, wall: float, start: float) -> HttpResponseBase | None:
        try:
            route, view, skip = _route_and_view(request)
            if skip:
                return response
            record = RequestRecord(
                method=request.method or "GET", route=route, view=view,
                path=request.path, query_string=request.META.get("QUERY_STRING", ""),
                status=response.status_code if response is not None else 500,
                ts=wall, duration_ms=(_perf() - start) * 1000.0,
                queries=ctx.queries, overflow=ctx.overflow, query_count=ctx.query_count,
                query_time_ms=ctx.query_time_ms, exception=ctx.exception,
                user_id=_user_id(request),
            )
            if response is not None and response.streaming:
                _time_stream(response, record, ctx, start)
                return response
            buffer_module.push(record)
        except Exception as exc:
            buffer_module.buffer.count_internal_error("middleware", exc)
        return response


def _time_stream(response: Any, record: RequestRecord, ctx: CaptureContext,
                 start: float) -> None:
    """Finish the record when the stream ends, without reading it ourselves."""
    record.streaming = True
    record.ttfb_ms = record.duration_ms
    content = response.streaming_content

    def done() -> None:
        record.duration_ms = (_perf() - start) * 1000.0
        record.query_count = ctx.query_count
        record.query_time_ms = ctx.query_time_ms
        buffer_module.push(record)

    if getattr(response, "is_async", False):
        async def agen() -> AsyncIterator[Any]:
            try:
                async for chunk in content:
                    yield chunk
            except BaseException as exc:
                record.exception = ctx.exception or type(exc).__name__
                raise
            finally:
                done()
        response.streaming_content = agen()
    else:
        def gen() -> Iterator[Any]:
            try:
                for chunk in _iterate_in_context(content, ctx):
                    yield chunk
            except BaseException as exc:
                record.exception = ctx.exception or type(exc).__name__
                raise
            finally:
                done()
        response.streaming_content = gen()


def _iterate_in_context(content: Any, ctx: CaptureContext) -> Iterator[Any]:
    iterator = iter(content)
    while True:
        token = current.set(ctx)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            current.reset(token)
        yield chunk
