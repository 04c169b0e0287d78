"""Cold-cache cost of capture, in one process: what a request pays when its caches are cold.

    benchmarks/overhead/.venv/bin/python benchmarks/overhead/coldpath.py [--views one,ten]
        [--evict-mb 8] [--rounds 3000] [--tree /path/to/other/checkout]

On the benchmark's host a worker's caches are evicted between requests by
PostgreSQL, wrk and the other worker, so code that a request runs once (and the
rest of the site never) is fetched from memory every time. In a warm loop the
same code costs a third as much. This serves the benchmark site's WSGI handler
in-process and, before every request, reads ``--evict-mb`` of memory so that the
request starts cold, then times the handler alone (``perf_counter``). Each round
serves one request in each variant, in a shuffled order:

- ``capture``: perfmonitor as installed (``ENABLED`` on);
- ``disabled``: ``ENABLED`` off, the query hook still installed;
- ``bare``: ``ENABLED`` off and the query hook removed: the baseline.

Reported per variant: the median request time and the median and 10 %-trimmed
mean of its paired difference to ``bare`` in the same round. The flusher thread
is stopped; the buffer is emptied every 400 requests outside the timed part.
``--tree`` serves perfmonitor from another checkout (``BENCH_PERFMONITOR_TREE``),
so that two commits can be compared in two runs. Needs the benchmark database
(``paired.py`` or ``run.py`` prepares it). No timing lock is taken: run it on a
quiet machine.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = ("capture", "disabled", "bare")
LABELS = {"one": "1-query", "ten": "10-query"}


def empty_buffer(buffer: Any) -> None:
    """Drop what a perfmonitor buffer holds, as if a flush had taken it (no write)."""
    for waiting in (buffer._frames, buffer._marks, buffer._items,
                    getattr(buffer, "_requests", [])):  # (not in older checkouts)
        waiting.clear()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", default="one,ten")
    parser.add_argument("--evict-mb", type=int, default=8,
                        help="memory read before each request (0: warm caches)")
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--tree", help="serve perfmonitor from this checkout")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def trimmed_mean(values: list[float], cut: float = 0.1) -> float:
    ordered = sorted(values)
    k = int(len(ordered) * cut)
    return statistics.fmean(ordered[k:len(ordered) - k])


def main() -> None:
    args = parse_args()
    if args.tree:
        os.environ["BENCH_PERFMONITOR_TREE"] = args.tree
    os.environ["BENCH_PROFILE"] = "perfmonitor"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    sys.path.insert(0, str(HERE))
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test.client import RequestFactory
    from servers import VIEWS

    import perfmonitor
    from perfmonitor import conf
    from perfmonitor.capture import buffer as buffer_module
    from perfmonitor.capture import query_hook
    from perfmonitor.conf import settings as monitor_settings

    handler = WSGIHandler()
    buffer = buffer_module.buffer
    evict = bytearray(args.evict_mb << 20)

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        pass

    def serve(environ: dict[str, object]) -> int:
        if args.evict_mb:
            bytes(evict)  # reads (and copies) it all: the request starts cold
        started = time.perf_counter_ns()
        handler(dict(environ), start_response).close()
        return time.perf_counter_ns() - started

    def use(variant: str) -> None:
        monitor_settings.__dict__["ENABLED"] = variant == "capture"
        hot = getattr(conf, "request_path", None)  # (not in older checkouts)
        if hot is not None:
            hot.loaded = False
        wrappers = connection.execute_wrappers
        if variant == "bare":
            if query_hook.query_timer in wrappers:
                wrappers.remove(query_hook.query_timer)
        elif query_hook.query_timer not in wrappers:
            wrappers.insert(0, query_hook.query_timer)

    print(f"perfmonitor from {Path(perfmonitor.__file__).parent}, "
          f"{args.evict_mb} MB evicted before each request, {args.rounds} rounds")
    rng = random.Random(args.seed)
    for view in [v.strip() for v in args.views.split(",") if v.strip()]:
        environ = RequestFactory().get(VIEWS[view], HTTP_HOST="127.0.0.1").environ
        use("capture")
        for _ in range(args.warmup):
            serve(environ)
        buffer.stop()  # the flusher would run inside the timed requests
        empty_buffer(buffer)
        times: dict[str, list[int]] = {variant: [] for variant in VARIANTS}
        order = list(VARIANTS)
        for n in range(args.rounds):
            rng.shuffle(order)
            for variant in order:
                use(variant)
                times[variant].append(serve(environ))
            if n % 400 == 399:
                empty_buffer(buffer)
        use("capture")
        empty_buffer(buffer)
        base = times["bare"]
        print(f"\n{LABELS.get(view, view)} view")
        print("| variant | request µs (median) | over bare: median of pairs | trimmed mean |")
        print("|---|---|---|---|")
        for variant in VARIANTS:
            diffs = [(a - b) / 1000 for a, b in zip(times[variant], base, strict=True)]
            print(f"| {variant} | {statistics.median(times[variant]) / 1000:.1f} | "
                  f"{statistics.median(diffs):+.1f} | {trimmed_mean(diffs):+.1f} |")


if __name__ == "__main__":
    main()
