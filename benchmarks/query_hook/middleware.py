"""Microbenchmark of the middleware: what it adds to one request, sync and async.

    .venv/bin/python benchmarks/query_hook/middleware.py [--rounds 21] [--requests 20000]

Times ``PerformanceMiddleware`` around a view that does nothing but return a
prepared response (the request already resolved, as Django's handler leaves it),
so what is timed is the middleware alone: the capture context, the ContextVar,
both clocks, the route, the status, the user, the record packed and appended to
the buffer. Variants, interleaved in every round so machine noise hits them alike:

- sync bare / async bare:  the view called (awaited) without the middleware
- sync python / async python:  the middleware's Python code
- sync compiled / async compiled:  with ``perfmonitor.capture._speedups``: the
  compiled ``__call__``; under an async handler the coroutine stays Python and
  its two ends (``_async_begin``, ``_async_finish``) are compiled

Async variants await the middleware in one coroutine (one event-loop turn for the
whole round), so the loop's own cost is not in the figures. Each cell is the
median over rounds of µs per request; "added" is the median over rounds of
(variant - bare) from the same round. Warm caches: this is the middleware's own
instruction cost, not what it costs a cold request on a busy host
(``benchmarks/overhead/footprint.py`` counts that).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def configure() -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False, USE_TZ=True, SECRET_KEY="bench", ALLOWED_HOSTS=["*"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "perfmonitor"],
        ROOT_URLCONF=__name__, PERFMONITOR={"BACKGROUND_FLUSH": False,
                                            "BUFFER_SIZE": 10_000_000},
    )
    django.setup()
    globals()["urlpatterns"] = _urlpatterns()  # ROOT_URLCONF is this module


def _view(request: Any) -> Any:  # the URL pattern below; never called
    raise AssertionError


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("courses/<int:pk>/", _view, name="course")]


def variants() -> dict[str, Callable[[int], float]]:
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from perfmonitor.capture import buffer as buffer_module
    from perfmonitor.capture import middleware

    response = HttpResponse("ok")
    request = RequestFactory().get("/courses/17/", {"page": "2"})
    request.resolver_match = resolve("/courses/17/")

    def view(request: Any) -> HttpResponse:
        return response

    async def async_view(request: Any) -> HttpResponse:
        return response

    compiled = middleware._CompiledMiddleware
    ends = middleware._async_begin, middleware._async_finish

    def sync_handler(use_compiled: bool) -> Any:
        middleware._CompiledMiddleware = compiled if use_compiled else None
        try:
            return middleware.PerformanceMiddleware(view)
        finally:
            middleware._CompiledMiddleware = compiled

    def timed_sync(handler: Any) -> Callable[[int], float]:
        def run(n: int) -> float:
            buffer_module.buffer.reset()
            start = time.perf_counter()
            for _ in range(n):
                handler(request)
            return time.perf_counter() - start
        return run

    def timed_async(handler: Any, use_compiled: bool) -> Callable[[int], float]:
        async def serve(n: int) -> float:
            start = time.perf_counter()
            for _ in range(n):
                await handler(request)
            return time.perf_counter() - start

        def run(n: int) -> float:
            buffer_module.buffer.reset()
            middleware._async_begin, middleware._async_finish = (
                ends if use_compiled else (middleware._begin, middleware._finish))
            try:
                return asyncio.run(serve(n))
            finally:
                middleware._async_begin, middleware._async_finish = ends
        return run

    out = {
        "sync bare": timed_sync(view),
        "sync python": timed_sync(sync_handler(False)),
        "async bare": timed_async(async_view, False),
        "async python": timed_async(middleware.PerformanceMiddleware(async_view), False),
    }
    if compiled is not None:
        out["sync compiled"] = timed_sync(sync_handler(True))
        out["async compiled"] = timed_async(middleware.PerformanceMiddleware(async_view), True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per variant "
                        "per round")
    args = parser.parse_args()
    configure()
    from perfmonitor.capture import query_hook

    runs = variants()
    for run in runs.values():  # warm: the route cache, the settings the request path reads
        run(200)
    per_request: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            gc.collect()
            per_request[name].append(run(args.requests) / args.requests * 1e6)
    from perfmonitor.capture import buffer as buffer_module

    buffer_module.buffer.reset()  # nothing left for the exit's flush (no tables here)
    print(f"middleware ({query_hook.IMPLEMENTATION} build available), {args.rounds} rounds x "
          f"{args.requests} requests; µs per request, median over rounds\n")
    print("| variant | µs per request | added over bare (median of same-round differences) |")
    print("|---|---|---|")
    for name, values in per_request.items():
        base = per_request[name.split()[0] + " bare"]
        added = statistics.median(v - b for v, b in zip(values, base, strict=True))
        print(f"| {name} | {statistics.median(values):.2f} | "
              f"{'' if name.endswith('bare') else f'{added:+.2f}'} |")


if __name__ == "__main__":
    main()
