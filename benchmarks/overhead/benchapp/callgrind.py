"""The instruction count's control endpoint (instructions.py); absent from timed runs.

``GET /_cg/mark/?label=seg1`` ends a measured segment: it makes the monitor write
what it buffered (in a long-lived helper thread with its own database connection,
as perfmonitor's flusher does; sentry's transport thread for sentry-sdk), waits for
it, then tells callgrind to dump the instructions of every thread since the
previous mark and zero them. Mounted only when ``BENCH_CALLGRIND_LIB`` names the
compiled ``cgctl/cgctl.c``.
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

_lib = ctypes.CDLL(os.environ["BENCH_CALLGRIND_LIB"])
_lib.cg_dump.argtypes = [ctypes.c_char_p]
_jobs: queue.Queue[tuple[Callable[[], object], threading.Event]] = queue.Queue()
_helper: list[threading.Thread] = []


def _serve_jobs() -> None:
    while True:
        job, done = _jobs.get()
        try:
            job()
        finally:
            done.set()


def _in_helper(job: Callable[[], object]) -> None:
    if not _helper:
        thread = threading.Thread(target=_serve_jobs, name="bench-flush", daemon=True)
        thread.start()
        _helper.append(thread)
    done = threading.Event()
    _jobs.put((job, done))
    done.wait()


def _flush_monitor() -> None:
    if settings.PROFILE == "perfmonitor":
        from perfmonitor.capture.buffer import flush_now

        _in_helper(flush_now)
    elif settings.PROFILE == "sentry-sdk":
        import sentry_sdk

        sentry_sdk.flush(timeout=120)  # waits for its transport thread to send


def mark(request: HttpRequest) -> HttpResponse:
    _flush_monitor()
    _lib.cg_dump(request.GET.get("label", "mark").encode())
    return HttpResponse(f"{_lib.cg_running()}", content_type="text/plain")
