"""PerformanceMiddleware: times every request, sync or async, without I/O.

Place it first in ``MIDDLEWARE`` (or right after ``SecurityMiddleware``) so the
queries of the session and authentication middleware are counted too; the
system checks warn when it sits below them.

What the request path does: create a capture context, set it in a ContextVar,
call the rest of the stack, build one flat tuple and append it to the buffer.
No regex, no fingerprinting, no database, no lock. A failure anywhere in here
is counted and the host's response goes out untouched.

Under a sync handler, where ``perfmonitor.capture._speedups`` was built, the
common case of all this runs compiled (``_CompiledMiddleware``): a resolved route
the route cache knows, a response that is not streamed. It records what
``_begin`` and ``_finish`` record, packed as ``records.pack_request`` packs it,
and hands every other case to them. Under an async handler the coroutine
(``__acall__``) stays Python, and what it does before and after awaiting the view
is the same compiled code (``_async_begin``, ``_async_finish``).

Streaming responses are not read: their iterator is wrapped so that queries
run while the body streams are attributed to the request, and the record is
finished when the stream ends or the response is closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from perfmonitor.capture import buffer as buffer_module
from perfmonitor.capture import query_hook
from perfmonitor.capture.context import SUPPRESSED, CaptureContext, current
from perfmonitor.capture.records import HTTP_METHODS, RequestRecord, pack_request, request_record
from perfmonitor.conf import request_path

if query_hook.IMPLEMENTATION == "compiled":
    from perfmonitor.capture import _speedups  # type: ignore[attr-defined]

_perf = time.perf_counter
UNRESOLVED_ROUTE = "<unresolved>"
CLIENT_CLOSED_REQUEST = 499  # the client went away before the response (nginx's code)


def _begin(request: HttpRequest) -> CaptureContext | None:
    """A context for this request: SUPPRESSED on an ignored path, None when capture is off.

    Run by every request, with cold caches on a busy host: slot reads of the
    request-path settings, the path's prefix test and the context.
    """
    try:
        hot = request_path if request_path.loaded else request_path.load()
        if not hot.enabled:
            return None
        if request.path.startswith(hot.ignore_prefixes):
            return SUPPRESSED  # an ignored path's queries are not captured either
        return CaptureContext(hot.query_limit)
    except Exception as exc:
        buffer_module.buffer.count_internal_error("middleware", exc)
        return None


# (route pattern, view function, view name) -> (route template, view path, view
# name, ignored view). A site has a bounded set of these; caching spares every
# request the string work and the AttributeErrors that probing a plain function for
# ``cls`` / ``view_class`` raises, and a buffered record keeps the cached strings
# alive instead of new ones of its own (RequestRecord tells why that matters).
MAX_ROUTE_CACHE = 2000
_route_cache: dict[tuple[str, Any, str], tuple[str, str, str, bool]] = {}
_UNRESOLVED = (UNRESOLVED_ROUTE, "", "", False)
# Django upper-cases the method into a new string per request; a record keeps the
# shared one.
_METHODS = {method: method for method in HTTP_METHODS}


def _route_template(pattern: str) -> str:
    route = pattern
    if route.startswith("^") or route.endswith("$"):  # re_path: keep the pattern, not anchors
        route = route.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
    return route if route.startswith("/") else "/" + route


def _ignored_view(func: Any) -> bool:
    return bool(getattr(func, "perfmonitor_ignore", False) or
                getattr(getattr(func, "cls", None), "perfmonitor_ignore", False) or
                getattr(getattr(func, "view_class", None), "perfmonitor_ignore", False))


def _route_and_view(request: HttpRequest) -> tuple[str, str, str, bool]:
    """(route template, view path, view name, ignored view) of a resolved request."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return _UNRESOLVED
    key = (match.route or "", match.func, match.view_name or "")
    try:
        cached = _route_cache.get(key)
        hashable = True
    except TypeError:  # an unhashable view callable: no caching
        cached, hashable = None, False
    if cached is None:
        cached = (_route_template(key[0]), match._func_path, key[2], _ignored_view(key[1]))
        if hashable:
            if len(_route_cache) >= MAX_ROUTE_CACHE:
                _route_cache.clear()
            _route_cache[key] = cached
    return cached


def _user_id(request: HttpRequest) -> str:
    # Only a user the host already loaded: touching request.user would run a query.
    # getattr with a default makes no AttributeError for a missing attribute, and,
    # unlike request.__dict__, does not turn the request's attributes into a dict.
    user = getattr(request, "_cached_user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return str(user.pk)


class PerformanceMiddleware:
    """Times every request. Under a sync handler, where ``perfmonitor.capture._speedups``
    was built, an instance is a ``_CompiledMiddleware``: this class with ``__call__``
    compiled (query_hook tells when the Python code runs instead)."""

    sync_capable = True
    async_capable = True

    def __new__(cls, get_response: Callable[[HttpRequest], Any]) -> PerformanceMiddleware:
        if (cls is PerformanceMiddleware and _CompiledMiddleware is not None
                and not iscoroutinefunction(get_response)):
            return _speedups.Middleware.__new__(_CompiledMiddleware)
        return super().__new__(cls)

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        ctx = _begin(request)
        if ctx is None:
            return self.get_response(request)
        token = current.set(ctx)
        wall = time.time()
        start = _perf()
        try:
            response = self.get_response(request)
        except BaseException as exc:
            if ctx is not SUPPRESSED:
                _finish(request, None, ctx, wall, start, exc)
            raise
        finally:
            current.reset(token)
        return response if ctx is SUPPRESSED else _finish(request, response, ctx, wall, start)

    async def __acall__(self, request: HttpRequest) -> Any:
        ctx = _async_begin(request)
        if ctx is None:
            return await self.get_response(request)
        token = current.set(ctx)
        wall = time.time()
        start = _perf()
        try:
            response = await self.get_response(request)
        except BaseException as exc:
            if ctx is not SUPPRESSED:
                _finish(request, None, ctx, wall, start, exc)
            raise
        finally:
            current.reset(token)
        return response if ctx is SUPPRESSED else _async_finish(request, response, ctx, wall,
                                                                start)

    def process_exception(self, request: HttpRequest, exception: BaseException) -> None:
        # Django turns the view's exception into a 500 response below us; this
        # is where its name is still known.
        ctx = current.get()
        if ctx is not None and ctx is not SUPPRESSED:
            ctx.exception = type(exception).__name__


def _finish(request: HttpRequest, response: HttpResponseBase | None, ctx: CaptureContext,
            wall: float, start: float, exc: BaseException | None = None) -> Any:
    try:
        duration_ms = (_perf() - start) * 1000.0
        route, view, url_name, skip = _route_and_view(request)
        if skip:
            return response
        if response is not None:
            status = response.status_code
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            status = CLIENT_CLOSED_REQUEST
        else:
            status = 500
        if exc is not None and not ctx.exception and status == 500:
            ctx.exception = type(exc).__name__
        # pack_request's arguments as one flat tuple of plain values, packed later and
        # a chunk at a time (capture.buffer tells why); the queries as a tuple, which the
        # garbage collector stops tracking (a list it tracks as long as it lives).
        method = request.method or "GET"
        fields = (_METHODS.get(method, method), route, view, request.path,
                  request.META.get("QUERY_STRING", ""), status, wall, duration_ms,
                  tuple(ctx.queries), ctx.overflow, ctx.exception, url_name,
                  _user_id(request))
        if response is None or not response.streaming:
            buffer_module.buffer.push_request(fields)  # (this try counts what it may raise)
        else:
            _time_stream(response, request_record(pack_request(*fields)), ctx, start)
    except Exception as error:
        buffer_module.buffer.count_internal_error("middleware", error)
    return response


class _StreamTimer:
    """Finishes a streaming request's record exactly once."""

    __slots__ = ("record", "ctx", "start", "done")

    def __init__(self, record: RequestRecord, ctx: CaptureContext, start: float) -> None:
        self.record = record
        self.ctx = ctx
        self.start = start
        self.done = False

    def finish(self, exc: BaseException | None = None, aborted: bool = False) -> None:
        if self.done:
            return
        self.done = True
        try:
            record = self.record
            ctx = self.ctx
            # The queries the body ran while it streamed belong to the request too.
            changes: dict[str, Any] = {"duration_ms": (_perf() - self.start) * 1000.0,
                                       "queries": ctx.queries,
                                       "overflow": ctx.overflow or None}
            if isinstance(exc, asyncio.CancelledError | GeneratorExit):
                aborted = True
            elif exc is not None:
                changes["exception"] = type(exc).__name__
                changes["status"] = max(record.status, 500)  # headers went out; the body failed
            changes["aborted"] = aborted
            buffer_module.push(record._replace(**changes))
        except Exception as error:
            buffer_module.buffer.count_internal_error("streaming", error)


class _SyncStream:
    def __init__(self, content: Any, timer: _StreamTimer) -> None:
        self._iterator = iter(content)
        self._timer = timer

    def __iter__(self) -> _SyncStream:
        return self

    def __next__(self) -> Any:
        token = current.set(self._timer.ctx)
        try:
            return next(self._iterator)
        except StopIteration:
            self._timer.finish()
            raise
        except BaseException as exc:
            self._timer.finish(exc)
            raise
        finally:
            current.reset(token)

    def close(self) -> None:  # called by response.close(): the client may have gone
        self._timer.finish(aborted=True)


class _AsyncStream:
    def __init__(self, content: Any, timer: _StreamTimer) -> None:
        self._iterator = aiter(content)
        self._timer = timer

    def __aiter__(self) -> _AsyncStream:
        return self

    async def __anext__(self) -> Any:
        token = current.set(self._timer.ctx)
        try:
            return await anext(self._iterator)
        except StopAsyncIteration:
            self._timer.finish()
            raise
        except BaseException as exc:
            self._timer.finish(exc)
            raise
        finally:
            current.reset(token)

    def close(self) -> None:
        self._timer.finish(aborted=True)


def _time_stream(response: Any, record: RequestRecord, ctx: CaptureContext,
                 start: float) -> None:
    """Finish the record when the stream ends, without reading it ourselves."""
    record = record._replace(streaming=True, ttfb_ms=record.duration_ms)
    timer = _StreamTimer(record, ctx, start)
    if getattr(response, "file_to_stream", None) is not None:
        # FileResponse: replacing its content would disable wsgi.file_wrapper
        # (sendfile); time it until the server closes it instead.
        closers = getattr(response, "_resource_closers", None)
        if closers is None:
            timer.finish()
        else:
            closers.append(timer.finish)
        return
    content = response.streaming_content
    if getattr(response, "is_async", False):
        response.streaming_content = _AsyncStream(content, timer)
    else:
        response.streaming_content = _SyncStream(content, timer)


def _compiled_middleware() -> type[PerformanceMiddleware] | None:
    """PerformanceMiddleware with the compiled sync ``__call__``, when the query hook
    is compiled too (the same switch: query_hook.IMPLEMENTATION), else None. Also
    points the async ``__acall__`` at the compiled ``begin`` and ``finish``."""
    global _async_begin, _async_finish
    if query_hook.IMPLEMENTATION != "compiled":
        return None
    _speedups.configure_middleware(
        CaptureContext, _begin, _finish, _route_cache, _METHODS, buffer_module,
        _count_middleware_error, time.time)
    _async_begin, _async_finish = _speedups.begin, _speedups.finish

    class _CompiledMiddleware(_speedups.Middleware, PerformanceMiddleware):
        __slots__ = ()
        # _speedups.Middleware comes first in the MRO: its compiled __call__ is found
        # before PerformanceMiddleware's.

    return _CompiledMiddleware


def _count_middleware_error(exc: BaseException) -> None:
    buffer_module.buffer.count_internal_error("middleware", exc)


# What __acall__ runs before and after awaiting the view: the compiled ones where
# _compiled_middleware() configured them (they hand every uncommon case to these).
_async_begin: Callable[[HttpRequest], CaptureContext | None] = _begin
_async_finish: Callable[..., Any] = _finish
_CompiledMiddleware = _compiled_middleware()
