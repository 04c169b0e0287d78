"""Server time of the dashboard's overview page at the analytics benchmark's data size.

Reuses the analytics benchmark's data set (``benchmarks.analytics.generate``:
10 million events over 30 days as rollup rows in PostgreSQL
``bench_analytics``) and its settings. Each case is the whole admin view:
permission checks, the analytics summary query set, alerts, journeys,
insights, bundles, chart drawing and template rendering, as a staff user with
the permission would get it, with the clock set to the data set's "now".
Cases are interleaved over several rounds; the table shows medians.

    DJANGO_SETTINGS_MODULE=benchmarks.analytics.settings \\
        .venv/bin/python -m benchmarks.analytics.generate      # once
    DJANGO_SETTINGS_MODULE=benchmarks.analytics.settings \\
        .venv/bin/python -m benchmarks.dashboard.bench_overview [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import datetime, timedelta
from unittest import mock

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.analytics.settings")

OVERVIEW = "/admin/perfmonitor/dashboard/"
TARGET_MS = 100.0  # the overview, default range (24 h)
CASES = {
    "overview 24h (default)": f"{OVERVIEW}?range=24h",
    "overview 1h": f"{OVERVIEW}?range=1h",
    "overview 7d": f"{OVERVIEW}?range=7d",
    "overview 30d": f"{OVERVIEW}?range=30d",
    "overview 24h, route filter": f"{OVERVIEW}?range=24h&route=/courses/",
    "partial: cards 24h": f"{OVERVIEW}panel/cards/?range=24h",
    "partial: trends 24h": f"{OVERVIEW}panel/trends/?range=24h",
    "partial: alerts 24h": f"{OVERVIEW}panel/alerts/?range=24h",
    # Loaded by the page right after it arrives (hx-trigger="load"):
    "deferred: insights 24h": f"{OVERVIEW}panel/insights/?range=24h",
    "deferred: bundles 24h": f"{OVERVIEW}panel/bundles/?range=24h",
    "deferred: journeys 24h": f"{OVERVIEW}panel/journeys/?range=24h",
}
SUMMARY = "analytics summary alone 24h"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext
    from django.urls import resolve

    from benchmarks.analytics.generate import STATE_FILE

    meta = json.loads(STATE_FILE.read_text())
    now = datetime.fromisoformat(meta["now"])
    # An unsaved active superuser: staff with every permission, no session lookup needed.
    user = User(username="bench", is_staff=True, is_superuser=True, is_active=True)
    factory = RequestFactory()

    def render(path: str) -> int:
        request = factory.get(path)
        request.user = user
        match = resolve(request.path_info)
        response = match.func(request, *match.args, **match.kwargs)
        response.render()
        assert response.status_code == 200, (path, response.status_code)
        assert b"could not be loaded" not in response.content, path
        return len(response.content)

    from perfmonitor.analytics.overview import dashboard_summary
    from perfmonitor.analytics.query import Window
    from perfmonitor.dashboard.controls import TREND_BUCKETS

    timings: dict[str, list[float]] = {name: [] for name in [*CASES, SUMMARY]}
    from perfmonitor.models import MetricRollup

    if not MetricRollup.objects.filter(kind="request").exists():
        raise SystemExit("No rollups in the benchmark database (is the generator running, or "
                         "not run yet?): python -m benchmarks.analytics.generate")
    with mock.patch("django.utils.timezone.now", return_value=now):
        connection.ensure_connection()
        sizes = {name: render(path) for name, path in CASES.items()}  # warm imports, caches
        with CaptureQueriesContext(connection) as queries:
            render(CASES["overview 24h (default)"])
        for _ in range(args.rounds):
            for name, path in CASES.items():
                started = time.perf_counter()
                render(path)
                timings[name].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            dashboard_summary(Window.last(timedelta(hours=24), now=now), {},
                              trend_bucket=TREND_BUCKETS["24h"])
            timings[SUMMARY].append((time.perf_counter() - started) * 1000)
        sizes[SUMMARY] = 0

    print(f"Dashboard server time: {meta['events']:,} events over 30 days, "
          f"{meta['rows']:,} rollup rows ({meta['table_size']}), PostgreSQL, "
          f"{args.rounds} rounds, medians")
    print(f"{'case':32} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'HTML kB':>8}")
    for name, values in timings.items():
        print(f"{name:32} {statistics.median(values):10.1f} {min(values):8.1f} "
              f"{max(values):8.1f} {sizes[name] / 1000:8.1f}")
    overview = statistics.median(timings["overview 24h (default)"])
    summary = statistics.median(timings[SUMMARY])
    verdict = "within" if overview <= TARGET_MS else "OVER"
    print(f"\noverview 24h: {overview:.1f} ms, {verdict} the {TARGET_MS:.0f} ms target "
          f"(of which the analytics summary query set: {summary:.1f} ms); "
          f"{len(queries.captured_queries)} SQL queries per render")
    print(f"load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
