"""Server time of the dashboard's summary query set on the generated data set.

Runs ``perfmonitor.analytics.overview.dashboard_summary`` for a 24-hour and a
30-day window ending at the data set's "now", interleaved, several rounds,
and prints a table of medians (plus each part of the query set alone).

    DJANGO_SETTINGS_MODULE=benchmarks.analytics.settings \\
        .venv/bin/python -m benchmarks.analytics.bench_summary [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import datetime, timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.analytics.settings")

TARGETS_MS = {"24h": 100.0, "30d": 200.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    from benchmarks.analytics.generate import STATE_FILE
    from perfmonitor.analytics import overview, scores
    from perfmonitor.analytics.assessment import assess_pages
    from perfmonitor.analytics.query import Window, pinned_marks, stats

    meta = json.loads(STATE_FILE.read_text())
    now = datetime.fromisoformat(meta["now"])
    windows = {"24h": Window.last(timedelta(hours=24), now=now),
               "30d": Window.last(timedelta(days=30), now=now)}
    parts = {
        "summary (all below)": lambda w: overview.dashboard_summary(w),
        "score": lambda w: scores.analyze_performance(w),
        "cards (+ previous window)": lambda w: overview.cards(w),
        "vitals per page": lambda w: assess_pages(w),
        "top routes": lambda w: overview.top_routes(
            stats("request", window=w, group_by=("name", "dimension")), w),
        "trends": lambda w: overview.trends(w),
        "(trends, hourly at 30 d)": lambda w: overview.trends(w, bucket=timedelta(hours=1)),
    }
    connection.ensure_connection()
    overview.dashboard_summary(windows["24h"])  # warm the connection and imports
    timings: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    queries: dict[str, int] = {}
    for _ in range(args.rounds):
        for label, window in windows.items():
            for part, fn in parts.items():
                with pinned_marks() if part != "summary (all below)" else _null():
                    start, start_cpu = time.perf_counter(), time.process_time()
                    fn(window)
                    timings.setdefault((part, label), []).append(
                        (time.perf_counter() - start) * 1000)
                    cpu.setdefault((part, label), []).append(
                        (time.process_time() - start_cpu) * 1000)
    from django.db import reset_queries
    from django.test.utils import CaptureQueriesContext

    for label, window in windows.items():
        reset_queries()
        with CaptureQueriesContext(connection) as ctx:
            overview.dashboard_summary(window)
        queries[label] = len(ctx.captured_queries)

    print(f"data set: {meta['events']:,} events over 30 days, {meta['series']} series, "
          f"{meta['rows']:,} rollup rows {meta['rows_by_resolution']}, table {meta['table_size']}")
    print(f"median of {args.rounds} rounds, ms: wall = server time in-process (PostgreSQL on "
          f"127.0.0.1 included); cpu = this process's CPU time (excludes PostgreSQL and time "
          f"spent waiting for a core on a shared machine)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'part':<28}{'24 h wall':>10}{'cpu':>8}{'30 d wall':>11}{'cpu':>8}")
    for part in parts:
        row = [statistics.median(timings[(part, label)]) for label in windows]
        row_cpu = [statistics.median(cpu[(part, label)]) for label in windows]
        print(f"{part:<28}{row[0]:>10.1f}{row_cpu[0]:>8.1f}{row[1]:>11.1f}{row_cpu[1]:>8.1f}")
    for label in windows:
        values = timings[("summary (all below)", label)]
        verdict = "ok" if statistics.median(values) <= TARGETS_MS[label] else "OVER TARGET"
        print(f"summary {label}: median {statistics.median(values):.1f} ms, min {min(values):.1f}, "
              f"max {max(values):.1f}, {queries[label]} SQL queries; target <= "
              f"{TARGETS_MS[label]:.0f} ms: {verdict}")


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
