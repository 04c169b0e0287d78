"""200 alert rules over a month of rollups: how long one evaluation run takes.

The rules mirror what an LMS team would write (per-route p95 and error rate,
route groups, per-fingerprint query p95, per-page vitals p75, API p95, bundle
size per page, journey completion and duration, performance scores, and
dynamic thresholds against yesterday and a 7-day baseline), over the data set
of ``benchmarks.alerting.generate``. A full ``evaluate_rules`` run is timed:
claims, metric reads, state machine, episode writes and outbox rows, one
transaction per rule. Side by side: the metric reads alone, shared (one
query per series set and window, watermarks read once) and naive (every rule
reads its own series, as 200 independent queries would).

    .venv/bin/python -m benchmarks.alerting.generate      # once (a few minutes)
    .venv/bin/python -m benchmarks.alerting.bench_rules [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.alerting.settings")

TARGET_MS = 1000.0


def rule_specs(routes: list[tuple[str, str]], fingerprints: list[str], pages: list[str],
               endpoints: list[str], journeys: list[str]) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []

    def add(**fields: Any) -> None:
        n = len(specs)
        specs.append({"key": f"bench-{n}", "name": f"Bench rule {n}", **fields})

    for i in range(40):
        route, method = routes[i % len(routes)]
        add(kind="request", series_name=route, series_dimension=method, aggregation="p95",
            window_seconds=300, warning_threshold=150.0 + 25 * (i % 8), for_seconds=300,
            min_samples=5)
    for i in range(20):
        route, method = routes[i % len(routes)]
        add(kind="request", series_name=route, aggregation="error_rate", window_seconds=900,
            warning_threshold=2.0, critical_threshold=5.0, min_samples=20)
    for i, glob in enumerate(["/api/*", "/courses/*", "/reports/*", "/bookings/*", "/*",
                              "/payments/*", "/classes/*", "/teachers/*", "/", "/*/"]):
        add(kind="request", series_name=glob, aggregation="p99", group_by=["route"],
            window_seconds=900, warning_threshold=800.0 + 100 * i)
    for i in range(40):
        add(kind="query", series_name=fingerprints[i % len(fingerprints)], aggregation="p95",
            window_seconds=300, critical_threshold=20.0 + 5 * (i % 6))
    vitals = [("LCP", 2500.0), ("INP", 200.0), ("CLS", 0.1)]
    for i in range(30):
        vital, limit = vitals[i % 3]
        add(kind="vital", series_name=vital, series_dimension=pages[i % len(pages)],
            aggregation="p75", window_seconds=3600, warning_threshold=limit, min_samples=10)
    for i in range(10):
        add(kind="vital", series_name=vitals[i % 3][0], aggregation="p75", group_by=["page"],
            window_seconds=3600 * (1 + i % 3), warning_threshold=vitals[i % 3][1] * 1.6)
    for i in range(15):
        add(kind="api", series_name=endpoints[i % len(endpoints)], aggregation="p95",
            window_seconds=900, warning_threshold=400.0 + 50 * (i % 5))
    for i in range(10):
        add(kind="resource", series_dimension="js_transfer", aggregation="p75",
            group_by=["page"], window_seconds=3600 * (1 + i % 2),
            warning_threshold=1_000_000.0 + 200_000 * i)
    for i in range(12):
        metric = "completion_rate" if i % 2 == 0 else "p75_duration"
        add(source="journey", kind="", series_name=journeys[i % len(journeys)],
            aggregation=metric, window_seconds=3600,
            operator="<" if metric == "completion_rate" else ">",
            warning_threshold=85.0 if metric == "completion_rate" else 40_000.0)
    for part, hours in (("overall", 1), ("frontend", 1), ("overall", 24)):
        add(source="score", kind="", aggregation=part, operator="<",
            window_seconds=3600 * hours, warning_threshold=70.0)
    for i in range(5):
        route, method = routes[i]
        add(kind="request", series_name=route, series_dimension=method, aggregation="p95",
            window_seconds=900, threshold_mode="percent_change", baseline_offset_seconds=86400,
            warning_threshold=50.0)
    for i in range(5):
        route, method = routes[i + 5]
        add(kind="request", series_name=route, series_dimension=method, aggregation="p95",
            window_seconds=900, threshold_mode="baseline", baseline_offset_seconds=86400,
            baseline_periods=7, warning_threshold=3.0, critical_threshold=6.0)
    assert len(specs) == 200, len(specs)
    return specs


def install_rules() -> list[Any]:
    from perfmonitor.models import (
        AlertEvaluation,
        AlertRule,
        MetricRollup,
        NotificationChannel,
        PerformanceAlert,
    )

    AlertEvaluation.objects.all().delete()
    PerformanceAlert.objects.all().delete()
    AlertRule.objects.all().delete()
    series = MetricRollup.objects.filter(resolution=3600).exclude(name="*").exclude(
        dimension="*")
    routes = sorted(set(series.filter(kind="request").values_list("name", "dimension")))
    fingerprints = sorted(set(series.filter(kind="query").values_list("name", flat=True)))
    pages = sorted(set(series.filter(kind="vital").values_list("dimension", flat=True)))
    endpoints = sorted(set(series.filter(kind="api").values_list("name", flat=True)))
    journeys = sorted(set(series.filter(kind="journey").values_list("name", flat=True)))
    team, _ = NotificationChannel.objects.get_or_create(name="Team", defaults={"type": "in_app"})
    oncall, _ = NotificationChannel.objects.get_or_create(
        name="On-call", defaults={"type": "email", "target": "oncall@example.com"})
    rules = []
    for spec in rule_specs(routes, fingerprints, pages, endpoints, journeys):
        rule = AlertRule(**spec)
        rule.full_clean()
        rule.save()
        rule.channels.set([team, oncall])
        rules.append(rule)
    return rules


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    import django

    django.setup()
    from celery import Celery
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from benchmarks.alerting.generate import STATE_FILE
    from perfmonitor.alerts.engine import evaluate_rules
    from perfmonitor.alerts.metrics import MetricReader, observe
    from perfmonitor.analytics.query import pinned_marks
    from perfmonitor.models import (
        AlertEvaluation,
        AlertNotification,
        AlertRule,
        MetricRollup,
        PerformanceAlert,
    )

    # Delivery tasks go to an in-process broker: the benchmark times evaluation, not Redis.
    Celery("bench", broker="memory://").set_default()
    meta = json.loads(STATE_FILE.read_text())
    now = datetime.fromisoformat(meta["now"])
    install_rules()
    rules = list(AlertRule.objects.filter(enabled=True).prefetch_related("channels"))
    minute = now.replace(second=0, microsecond=0)

    def full_run(at: datetime, fresh: bool = False) -> tuple[float, int]:
        AlertEvaluation.objects.all().delete()  # a fresh minute to claim, same data
        if fresh:  # no open episode: the run opens them all and writes their notifications
            PerformanceAlert.objects.all().delete()
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            report = evaluate_rules(at)
            elapsed = (time.perf_counter() - start) * 1000
        assert report.evaluated == 200 and report.skipped == 0, report.as_dict()
        return elapsed, len(ctx.captured_queries)

    def shared_reads() -> float:
        start = time.perf_counter()
        with pinned_marks():
            reader = MetricReader()
            for rule in rules:
                observe(rule, reader, minute)
        return (time.perf_counter() - start) * 1000

    def naive_reads() -> float:
        start = time.perf_counter()
        for rule in rules:
            observe(rule, MetricReader(), minute)
        return (time.perf_counter() - start) * 1000

    connection.ensure_connection()
    full_run(now, fresh=True)  # warm-up: imports, connection, PostgreSQL's buffers
    opening = [full_run(now, fresh=True) for _ in range(max(3, args.rounds // 2))]
    first_ms = statistics.median(ms for ms, _ in opening)
    first_queries = opening[-1][1]
    opened = PerformanceAlert.objects.count()
    states = dict(PerformanceAlert.objects.values_list("state").annotate(
        n=django.db.models.Count("pk")).values_list("state", "n"))
    notes = AlertNotification.objects.count()
    timings: dict[str, list[float]] = {"full": [], "shared": [], "naive": []}
    timings["opening"] = [ms for ms, _ in opening]
    queries = 0
    for i in range(args.rounds):
        ms, queries = full_run(now + timedelta(minutes=0, seconds=i % 50))
        timings["full"].append(ms)
        timings["shared"].append(shared_reads())
        timings["naive"].append(naive_reads())

    rows = MetricRollup.objects.count()
    med = {k: statistics.median(v) for k, v in timings.items() if v}
    print(f"data set: {meta['events']:,} events over 30 days, {meta['series']} series, "
          f"{rows:,} rollup rows {meta['rows_by_resolution']}, table {meta['table_size']}")
    print(f"200 rules; open episodes after the first run: {opened} {states}; "
          f"outbox rows: {notes}")
    print(f"median of {args.rounds} rounds, ms (in-process, PostgreSQL on 127.0.0.1)")
    print(f"{'':<58}{'ms':>9}{'SQL':>7}")
    print(f"{'evaluate_rules, opening run (opens episodes, writes outbox)':<58}"
          f"{first_ms:>9.0f}{first_queries:>7}")
    print(f"{'evaluate_rules, steady state (claims, state, writes)':<58}"
          f"{med['full']:>9.0f}{queries:>7}")
    print(f"{'  metric reads, shared reader + pinned watermarks':<58}{med['shared']:>9.0f}")
    print(f"{'  metric reads, naive (each rule on its own)':<58}{med['naive']:>9.0f}")
    print(f"naive / shared reads: {med['naive'] / med['shared']:.1f}x; target <= {TARGET_MS:.0f}"
          f" ms for a run: {'met' if max(first_ms, med['full']) <= TARGET_MS else 'MISSED'}")
    print(f"min / max: opening run {min(timings['opening']):.0f} / "
          f"{max(timings['opening']):.0f} ms, steady-state run {min(timings['full']):.0f} / "
          f"{max(timings['full']):.0f} ms")


if __name__ == "__main__":
    main()
