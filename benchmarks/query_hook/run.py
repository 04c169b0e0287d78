"""Microbenchmark of the query hook: what it adds to one SQL query.

    .venv/bin/python benchmarks/query_hook/run.py [--rounds 21] [--sqlite-queries 5000]
        [--postgres-queries 2000] [--postgres-url postgres://postgres@127.0.0.1:5432/test]

Runs ``SELECT %s`` through Django's cursor (``CursorWrapper.execute``, which
applies ``connection.execute_wrappers``) on SQLite in memory and on PostgreSQL,
with and without perfmonitor's timer installed. Variants, interleaved in
every round so machine noise hits them alike:

- bare:        no wrapper installed
- any wrapper: a pass-through wrapper (what Django's wrapper machinery costs)
- request:     the timer, inside a request's capture context (the normal case;
               a fresh context every 10 queries, as the middleware makes one)
- suppressed:  the timer, in perfmonitor's own code (it steps aside)
- standalone:  the timer, outside any request or task (one record per query)

Each cell is the median over rounds of the per-query time; "added" is the
median over rounds of (variant - bare) from the same round, "added(min)" the
fastest round of the variant minus the fastest of bare (the least noisy
estimate on a busy machine). A last table
times the timer alone around a no-op ``execute``, which is the hook's cost
free of database noise. Target: <= 5 us added per query.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def configure(postgres_url: str | None) -> list[str]:
    import django
    from django.conf import settings

    databases = {"sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    if postgres_url:
        import dj_database_url

        databases["postgres"] = dj_database_url.parse(postgres_url)
    databases["default"] = databases["sqlite"]
    settings.configure(
        DEBUG=False, USE_TZ=True, SECRET_KEY="bench", DATABASES=databases,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "perfmonitor"],
        PERFMONITOR={"BACKGROUND_FLUSH": False, "BUFFER_SIZE": 10_000_000},
    )
    django.setup()
    from perfmonitor.capture import query_hook

    query_hook._process_origin[:] = [None]  # only the standalone variant captures stray queries
    return [alias for alias in ("sqlite", "postgres") if alias in databases]


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1):
            return True
    except OSError:
        return False


QUERIES_PER_REQUEST = 10


def run_queries(alias: str, n: int, begin: Callable[[], Any] | None = None,
                end: Callable[[Any], None] | None = None) -> float:
    """Seconds for n queries through Django's cursor on one connection, in
    "requests" of QUERIES_PER_REQUEST queries (begin/end run around each)."""
    from django.db import connections

    with connections[alias].cursor() as cursor:
        start = time.perf_counter()
        for _ in range(n // QUERIES_PER_REQUEST):
            state = begin() if begin else None
            for _ in range(QUERIES_PER_REQUEST):
                cursor.execute("SELECT %s", [1])
                cursor.fetchone()
            if end:
                end(state)
        return time.perf_counter() - start


def variants(alias: str) -> dict[str, Callable[[int], float]]:
    from django.db import connections

    from perfmonitor.capture import buffer as buffer_module
    from perfmonitor.capture import query_hook
    from perfmonitor.capture.context import SUPPRESSED, CaptureContext, current

    connection = connections[alias]
    timer = query_hook.query_timer

    def installed(flag: bool) -> None:
        while timer in connection.execute_wrappers:
            connection.execute_wrappers.remove(timer)
        if flag:
            query_hook.install(connection)

    def bare(n: int) -> float:
        installed(False)
        return run_queries(alias, n)

    def passthrough(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        return execute(sql, params, many, context)

    def any_wrapper(n: int) -> float:
        installed(False)
        connection.execute_wrappers.insert(0, passthrough)
        try:
            return run_queries(alias, n)
        finally:
            connection.execute_wrappers.remove(passthrough)

    def request(n: int) -> float:
        installed(True)
        # A fresh capture context per "request", as the middleware makes one.
        return run_queries(alias, n, lambda: current.set(CaptureContext(limit=2000)),
                           current.reset)

    def own(n: int) -> float:
        installed(True)
        return run_queries(alias, n, lambda: current.set(SUPPRESSED), current.reset)

    def standalone(n: int) -> float:
        installed(True)
        query_hook._process_origin[:] = ["command:bench"]
        try:
            return run_queries(alias, n)
        finally:
            query_hook._process_origin[:] = [None]
            buffer_module.buffer.reset(join=False)

    return {"bare": bare, "any wrapper": any_wrapper, "request": request, "suppressed": own,
            "standalone": standalone}


def bench_backend(alias: str, n: int, rounds: int) -> dict[str, tuple[float, float, float]]:
    """{variant: (median us per query, median us added vs bare in the same round)}."""
    runs = variants(alias)
    run_queries(alias, min(n, 500))  # connect and warm up
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(rounds):
        # Rotate the order each round: no variant always runs first (or last).
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            gc.collect()
            times[name].append(runs[name](n) / n * 1e6)
    return summarize(times)


def summarize(times: dict[str, list[float]]) -> dict[str, tuple[float, float, float]]:
    """{variant: (median us, median of paired (variant - bare), min - min of bare)}."""
    bare = times["bare"]
    return {name: (statistics.median(values),
                   statistics.median(v - b for v, b in zip(values, bare, strict=True)),
                   min(values) - min(bare))
            for name, values in times.items()}


def bench_timer_alone(rounds: int, n: int = 200_000) -> dict[str, tuple[float, float, float]]:
    """The timer around a no-op execute, against calling the no-op directly."""
    from perfmonitor.capture import buffer as buffer_module
    from perfmonitor.capture import query_hook
    from perfmonitor.capture.context import CaptureContext, current

    timer = query_hook.query_timer
    sql = 'SELECT "t"."id", "t"."title" FROM "t" WHERE "t"."id" = %s LIMIT 21'

    def noop(sql, params, many, context):
        return None

    def direct() -> float:
        start = time.perf_counter()
        for _ in range(n):
            noop(sql, (1,), False, None)
        return time.perf_counter() - start

    def wrapped() -> float:
        token = current.set(CaptureContext(limit=10 * n))
        try:
            start = time.perf_counter()
            for _ in range(n):
                timer(noop, sql, (1,), False, None)
            return time.perf_counter() - start
        finally:
            current.reset(token)

    def wrapped_standalone() -> float:
        query_hook._process_origin[:] = ["command:bench"]
        try:
            start = time.perf_counter()
            for _ in range(n):
                timer(noop, sql, (1,), False, None)
            return time.perf_counter() - start
        finally:
            query_hook._process_origin[:] = [None]
            buffer_module.buffer.reset(join=False)

    runs = {"bare": direct, "request": wrapped, "standalone": wrapped_standalone}
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            gc.collect()
            times[name].append(runs[name]() / n * 1e6)
    return summarize(times)


def print_table(title: str, rows: dict[str, dict[str, tuple[float, float, float]]]) -> None:
    print(f"\n{title}")
    header = (f"{'backend':10} {'variant':12} {'us/query':>10} {'added us':>10} "
              f"{'added(min)':>10} {'ratio':>7}")
    print(header)
    print("-" * len(header))
    for backend, results in rows.items():
        bare = results["bare"][0]
        for variant, (median, added, added_min) in results.items():
            added_text = "" if variant == "bare" else f"{added:+10.3f}"
            min_text = "" if variant == "bare" else f"{added_min:+10.3f}"
            print(f"{backend:10} {variant:12} {median:10.3f} {added_text:>10} {min_text:>10} "
                  f"{median / bare:7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--sqlite-queries", type=int, default=5_000)
    parser.add_argument("--postgres-queries", type=int, default=2_000)
    parser.add_argument("--postgres-url", default=os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"), help="empty: SQLite only")
    args = parser.parse_args()

    postgres = args.postgres_url if args.postgres_url and reachable(args.postgres_url) else None
    aliases = configure(postgres)
    counts = {"sqlite": args.sqlite_queries, "postgres": args.postgres_queries}
    print(f"query hook microbenchmark: {args.rounds} interleaved rounds, medians; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), "
          f"load {os.getloadavg()[0]:.2f}")
    results = {alias: bench_backend(alias, counts[alias], args.rounds) for alias in aliases}
    print_table("SELECT %s through Django's cursor (queries per variant per round: "
                + ", ".join(f"{a} {counts[a]}" for a in aliases) + ")", results)
    if postgres is None:
        print("(PostgreSQL not reachable: its rows are missing)")
    print_table("the timer alone around a no-op execute (200000 calls per round)",
                {"none": bench_timer_alone(args.rounds)})


if __name__ == "__main__":
    main()
