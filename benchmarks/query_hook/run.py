"""Microbenchmark of the query hook: what it adds to one SQL query.

    .venv/bin/python benchmarks/query_hook/run.py [--rounds 9] [--sqlite-queries 20000]
        [--postgres-queries 4000] [--postgres-url postgres://postgres@127.0.0.1:5432/test]

Runs ``SELECT %s`` through Django's cursor (``CursorWrapper.execute``, which
applies ``connection.execute_wrappers``) on SQLite in memory and on PostgreSQL,
with and without perfmonitor's timer installed. Variants, interleaved in
every round so machine noise hits them alike:

- bare:        no wrapper installed
- request:     the timer, inside a request's capture context (the normal case)
- suppressed:  the timer, in perfmonitor's own code (it steps aside)
- standalone:  the timer, outside any request or task (one record per query)

Each cell is the median over rounds of the per-query time; "added" is the
median over rounds of (variant - bare) from the same round. A last table
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
    return [alias for alias in ("sqlite", "postgres") if alias in databases]


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1):
            return True
    except OSError:
        return False


def run_queries(alias: str, n: int) -> float:
    """Seconds for n queries through Django's cursor on one connection."""
    from django.db import connections

    with connections[alias].cursor() as cursor:
        start = time.perf_counter()
        for _ in range(n):
            cursor.execute("SELECT %s", [1])
            cursor.fetchone()
        return time.perf_counter() - start


def variants(alias: str) -> dict[str, Callable[[int], float]]:
    from django.db import connections

    from perfmonitor.capture import buffer as buffer_module
    from perfmonitor.capture import query_hook
    from perfmonitor.capture.context import CaptureContext, current, suppressed

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

    def request(n: int) -> float:
        installed(True)
        token = current.set(CaptureContext(limit=10 * n))
        try:
            return run_queries(alias, n)
        finally:
            current.reset(token)

    def own(n: int) -> float:
        installed(True)
        token = suppressed.set(True)
        try:
            return run_queries(alias, n)
        finally:
            suppressed.reset(token)

    def standalone(n: int) -> float:
        installed(True)
        query_hook._process_origin[:] = ["command:bench"]
        try:
            return run_queries(alias, n)
        finally:
            buffer_module.buffer.reset(join=False)

    return {"bare": bare, "request": request, "suppressed": own, "standalone": standalone}


def bench_backend(alias: str, n: int, rounds: int) -> dict[str, tuple[float, float]]:
    """{variant: (median us per query, median us added vs bare in the same round)}."""
    runs = variants(alias)
    run_queries(alias, min(n, 500))  # connect and warm up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            gc.collect()
            times[name].append(run(n) / n * 1e6)
    bare = times["bare"]
    return {name: (statistics.median(values),
                   statistics.median(v - b for v, b in zip(values, bare, strict=True)))
            for name, values in times.items()}


def bench_timer_alone(rounds: int, n: int = 200_000) -> dict[str, tuple[float, float]]:
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
            buffer_module.buffer.reset(join=False)

    runs = {"bare": direct, "request": wrapped, "standalone": wrapped_standalone}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            gc.collect()
            times[name].append(run() / n * 1e6)
    bare = times["bare"]
    return {name: (statistics.median(values),
                   statistics.median(v - b for v, b in zip(values, bare, strict=True)))
            for name, values in times.items()}


def print_table(title: str, rows: dict[str, dict[str, tuple[float, float]]]) -> None:
    print(f"\n{title}")
    header = f"{'backend':10} {'variant':12} {'us/query':>10} {'added us':>10} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for backend, results in rows.items():
        bare = results["bare"][0]
        for variant, (median, added) in results.items():
            added_text = "" if variant == "bare" else f"{added:+10.3f}"
            print(f"{backend:10} {variant:12} {median:10.3f} {added_text:>10} "
                  f"{median / bare:7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sqlite-queries", type=int, default=20_000)
    parser.add_argument("--postgres-queries", type=int, default=4_000)
    parser.add_argument("--postgres-url", default=os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    postgres = args.postgres_url if reachable(args.postgres_url) else None
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
