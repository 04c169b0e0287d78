"""The performance report: one structure, rendered as JSON, CSV or printable HTML.

Sections (the original design's report): overview and score, Web Vitals,
journeys, API / render / database trends, resources and bundles, alert
statistics, business impact, prioritized recommendations. Built from the
rollups (business impact alone reads sampled raw rows, see ``impact``).

``build_report(window, progress=callback)`` calls ``progress(done, total,
label)`` after each step, which the management command turns into a bar.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from perfmonitor.analytics import frontend, overview, scores, svg
from perfmonitor.analytics.assessment import assessment
from perfmonitor.analytics.benchmarks import compare_with_industry
from perfmonitor.analytics.query import Window, default_bucket, trend_points

Progress = Callable[[int, int, str], None]
TREND_KINDS = (("request", "Server requests", "ms"), ("query", "Database queries", "ms"),
               ("api", "Browser API calls", "ms"), ("render", "Component renders", "ms"))


def _trend_bucket(window: Window) -> timedelta:
    # A report is read, not zoomed: about 30-200 points whatever the window.
    if window.span > timedelta(days=3):
        return timedelta(days=1) if window.span > timedelta(days=14) else timedelta(hours=6)
    return default_bucket(window) if window.span <= timedelta(hours=6) else timedelta(hours=1)


def _trends(window: Window) -> dict[str, Any]:
    bucket = _trend_bucket(window)
    out = {}
    for kind, label, unit in TREND_KINDS:
        points = [{k: p[k] for k in ("t", "count", "p50", "p95", "error_rate")}
                  for p in trend_points(kind, window=window, bucket=bucket)]
        out[kind] = {"label": label, "unit": unit, "bucket_seconds": bucket.total_seconds(),
                     "points": points}
    return out


def _journeys(window: Window, analysis: dict[str, Any]) -> dict[str, Any]:
    part = analysis["parts"]["journeys"]
    return {"score": part["score"], "how": part["how"], "journeys": part["journeys"]}


def _alerts(window: Window) -> dict[str, Any]:
    try:
        from perfmonitor.alerts.stats import alert_statistics
    except ImportError:
        return {"available": False, "note": "alerting has no data (package not installed)"}
    try:
        return {"available": True, **alert_statistics(window)}
    except Exception as exc:  # the report still renders; the section says why
        return {"available": False, "note": f"alert statistics failed: {type(exc).__name__}"}


def build_report(window: Window, progress: Progress | None = None) -> dict[str, Any]:
    from perfmonitor.analytics.impact import business_impact
    from perfmonitor.analytics.insights import generate_insights

    steps: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("overview", lambda r: {"analysis": scores.analyze_performance(window),
                                "cards": overview.cards(window)}),
        ("benchmarks", lambda r: compare_with_industry(window, r["overview"]["analysis"])),
        ("web_vitals", lambda r: assessment(window)),
        ("journeys", lambda r: _journeys(window, r["overview"]["analysis"])),
        ("trends", lambda r: _trends(window)),
        ("top", lambda r: {
            "routes": frontend.top_series("request", window, limit=10,
                                          labels=("route", "method")),
            "queries": frontend.top_queries(window, limit=10),
            "api": frontend.api_summary(window, limit=10)["endpoints"],
            "renders": frontend.top_series("render", window, limit=10,
                                           labels=("component", "page"))}),
        ("resources", lambda r: frontend.resource_summary(window)),
        ("errors", lambda r: frontend.error_summary(window, limit=10)),
        ("alerts", lambda r: _alerts(window)),
        ("business_impact", lambda r: business_impact(window)),
        ("recommendations", lambda r: generate_insights(window, limit=15)),
    ]
    report: dict[str, Any] = {"title": "Performance report", "window": window.as_dict(),
                              "window_days": round(window.span.total_seconds() / 86400, 2),
                              "generated_at": timezone.now().isoformat()}
    for done, (key, build) in enumerate(steps, start=1):
        report[key] = build(report)
        if progress is not None:
            progress(done, len(steps), key)
    return report


# -- rendering -----------------------------------------------------------------------------


def render(report: dict[str, Any], fmt: str) -> tuple[str, str, str]:
    """(body, content type, file name) of the report in json, csv or html."""
    stamp = report["window"]["end"][:10]
    if fmt == "json":
        return (json.dumps(report, indent=2, default=str), "application/json",
                f"perfmonitor-report-{stamp}.json")
    if fmt == "csv":
        return to_csv(report), "text/csv; charset=utf-8", f"perfmonitor-report-{stamp}.csv"
    if fmt == "html":
        return to_html(report), "text/html; charset=utf-8", f"perfmonitor-report-{stamp}.html"
    raise ValueError(f"format must be json, csv or html; got {fmt!r}")


def csv_rows(report: dict[str, Any]) -> list[tuple[str, str, str, Any, str]]:
    """(section, item, metric, value, unit): the report's numbers, one per row."""
    rows: list[tuple[str, str, str, Any, str]] = []
    analysis = report["overview"]["analysis"]
    rows.append(("overview", "site", "performance_score", analysis["score"], "/100"))
    for key, part in analysis["parts"].items():
        rows.append(("overview", key, "part_score", part["score"], "0-1"))
    for card in report["overview"]["cards"]:
        rows.append(("overview", card["key"], "value", card["value"], card["unit"]))
        rows.append(("overview", card["key"], "change", card["change"], "ratio"))
    for bench in report["benchmarks"]:
        rows.append(("benchmarks", bench["kpi"], "verdict", bench["verdict"], ""))
    for page in report["web_vitals"]["pages"]:
        rows.append(("web_vitals", page["page"], "core_web_vitals",
                     page["assessment"]["status"], ""))
        for name, v in page["vitals"].items():
            if v["samples"]:
                rows.append(("web_vitals", page["page"], f"{name}_p75", v["p75"], v["unit"]))
    for j in report["journeys"]["journeys"]:
        rows.append(("journeys", j["journey"], "apdex", j["apdex"], "0-1"))
        rows.append(("journeys", j["journey"], "completed", j["completed"], ""))
    for kind, data in report["trends"].items():
        for point in data["points"]:
            rows.append((f"trend_{kind}", point["t"], "p95", point["p95"], data["unit"]))
            rows.append((f"trend_{kind}", point["t"], "count", point["count"], ""))
    for r in report["top"]["routes"]:
        rows.append(("routes", f"{r['method']} {r['route']}", "p95", r["p95"], "ms"))
        rows.append(("routes", f"{r['method']} {r['route']}", "total_time", r["total_time"],
                     "ms"))
    for q in report["top"]["queries"]:
        rows.append(("queries", q["fingerprint"], "p95", q["p95"], "ms"))
    for page in report["resources"]["pages"]:
        rows.append(("resources", page["page"], "bundle_bytes", page["bundle_bytes"], "bytes"))
    for key, value in report["alerts"].items():
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            rows.append(("alerts", "all", key, value, ""))
    for section in ("by_lcp", "by_server_latency"):
        for b in report["business_impact"][section]["rows"]:
            rows.append(("business_impact", f"{section}:{b['bucket']}", "completion_rate",
                         b["completion_rate"], "ratio"))
            rows.append(("business_impact", f"{section}:{b['bucket']}", "journeys",
                         b["journeys"], ""))
    for item in report["recommendations"]:
        rows.append(("recommendations", str(item["priority"]), item["rule"], item["title"],
                     ""))
        rows.append(("recommendations", str(item["priority"]), "ms_lost",
                     item["impact"]["ms_lost"], "ms"))
    return rows


def to_csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["section", "item", "metric", "value", "unit"])
    for row in csv_rows(report):
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def charts(report: dict[str, Any]) -> dict[str, str]:
    """Inline SVG charts of the report (marked safe by the template, built escaped)."""
    from datetime import datetime

    out = {"score": svg.gauge(report["overview"]["analysis"]["score"],
                              label="Performance score")}
    for kind, data in report["trends"].items():
        points = data["points"]
        out[f"trend_{kind}"] = svg.line_chart(
            [svg.Series("p50", [(datetime.fromisoformat(p["t"]), p["p50"]) for p in points]),
             svg.Series("p95", [(datetime.fromisoformat(p["t"]), p["p95"]) for p in points])],
            title=f"{data['label']}: p50 and p95", unit=data["unit"])
    out["routes"] = svg.bar_chart([(f"{r['method']} {r['route']}", r["total_time"] / 1000)
                                   for r in report["top"]["routes"]],
                                  title="Top routes by total time", unit="s")
    resources = report["resources"]
    out["bundles"] = svg.bar_chart([(p["page"], p["bundle_bytes"] / 1024)
                                    for p in resources["pages"][:15]],
                                   title="JS + CSS transfer per page (p75)", unit="KiB",
                                   limit=resources["budget_bytes"] / 1024)
    return out


def to_html(report: dict[str, Any]) -> str:
    return render_to_string("perfmonitor/report.html",
                            {"report": report, "charts": charts(report)})
