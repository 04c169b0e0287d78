"""Panel data: calls into analytics, journeys and alerting, shaped for templates.

Every number comes from a function of those packages: the overview's query set
(``perfmonitor.analytics.overview``, computed once per page render and part by
part for a partial refresh), scores, Core Web Vitals assessment, insights,
``perfmonitor.journeys.analyze_journey``, ``perfmonitor.alerts`` and the rollup
query layer. This module only picks, orders, labels and draws.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from perfmonitor.analytics import assessment, overview, query, scores
from perfmonitor.analytics.vitals import VITALS
from perfmonitor.conf import settings
from perfmonitor.dashboard import charts
from perfmonitor.dashboard.controls import Controls

if TYPE_CHECKING:
    from perfmonitor.dashboard.panels import Board

SCORED_VITALS = ("LCP", "INP", "CLS", "FCP", "TTFB")


def summary(window: query.Window, controls: Controls) -> dict[str, Any]:
    return overview.dashboard_summary(window, controls.filters(),
                                      trend_bucket=controls.trend_bucket)


# Each part of the summary alone, for a partial refresh of one panel.
def _part_score(board: Board) -> Any:
    return scores.analyze_performance(board.window)


def _part_cards(board: Board) -> Any:
    return overview.cards(board.window, board.controls.route or None)


def _part_top_routes(board: Board) -> Any:
    routes = query.stats("request", window=board.window, name=board.controls.route or None,
                         group_by=("name", "dimension"))
    return overview.top_routes(routes, board.window)


def _part_trends(board: Board) -> Any:
    return overview.trends(board.window, board.controls.route or None,
                           board.controls.page or None, bucket=board.controls.trend_bucket,
                           device=board.controls.device or None)


def _part_vitals(board: Board) -> Any:
    return assessment.assess_pages(board.window, board.controls.page or None,
                                   board.controls.device or None)


PARTS = {"score": _part_score, "cards": _part_cards, "top_routes": _part_top_routes,
         "trends": _part_trends, "vitals": _part_vitals}

PART_LABELS = {"frontend": "Front end (Web Vitals)", "server": "Server (Apdex)",
               "journeys": "Journeys (Apdex)"}


def score(board: Board) -> dict[str, Any]:
    analysis = board.part("score")
    value = analysis["score"]
    weights = analysis["weights"]
    parts = [{"name": PART_LABELS.get(key, key),
              "score": None if part["score"] is None else part["score"] * 100,
              "weight": weights.get(key), "used": key in analysis["used"], "detail": part["how"]}
             for key, part in analysis["parts"].items()]
    return {"score": value, "low": analysis["low"], "parts": parts, "how": analysis["how"],
            "empty": value is None,
            "gauge": charts.gauge(value, label="Performance score")}


CARD_DIGITS = {"throughput": 1, "p95": 0, "error_rate": 2, "journey_completion": 1,
               "open_alerts": 0}


def cards(board: Board) -> dict[str, Any]:
    rows = []
    for item in board.part("cards"):
        change = item["change"]
        moved = change is not None and abs(change) >= 0.005
        rows.append({
            "key": item["key"], "label": item["label"], "unit": item["unit"],
            "value": item["value"], "previous": item["previous"],
            "change": None if change is None else change * 100,
            "direction": "flat" if not moved else "up" if change > 0 else "down",
            "tone": {"better": "good", "worse": "bad"}.get(item["direction"] or "", ""),
            "digits": CARD_DIGITS.get(item["key"], 1)})
    for item in rows:
        if item["key"] == "open_alerts":
            # "Open" is the alerting package's word: episodes in one of its open states.
            item["value"] = open_alerts().count()
    unsupported = [k for k in board.controls.filters() if k not in overview.SUPPORTED_FILTERS]
    return {"cards": rows, "unsupported": unsupported,
            "empty": all(item["value"] in (None, 0) for item in rows)}


def open_alerts() -> Any:
    from perfmonitor.models import PerformanceAlert
    from perfmonitor.models.alerts import OPEN_STATES

    return PerformanceAlert.objects.filter(state__in=OPEN_STATES)


_VERDICT_ORDER = {assessment.FAILED: 0, assessment.NOT_ASSESSABLE: 1, assessment.PASSED: 2}
_VERDICT_CSS = {assessment.FAILED: "poor", assessment.NOT_ASSESSABLE: "none",
                assessment.PASSED: "good"}


def vitals(board: Board) -> dict[str, Any]:
    page = board.controls.page or None
    pages = board.part("vitals")
    device = board.controls.device or None
    site = pages[0] if page and pages else assessment.assess_site(board.window, device)
    rows = [_vital_row(site["vitals"][name]) for name in SCORED_VITALS]
    verdict = site["assessment"]
    ranked = sorted(pages, key=lambda p: (_VERDICT_ORDER[p["assessment"]["status"]],
                                          -p["samples"]))[:10]
    page_rows = [{"page": item["page"], "label": item["assessment"]["status"],
                  "css": _VERDICT_CSS[item["assessment"]["status"]],
                  "reason": item["assessment"]["reason"],
                  "url": board.url("page", query=f"url={_q(item['page'])}&"
                                   f"{board.controls.query_string()}"),
                  **{name: _vital_row(item["vitals"][name]) for name in ("LCP", "INP", "CLS")}}
                 for item in ranked]
    return {"rows": rows, "pages": page_rows, "empty": not any(r["count"] for r in rows),
            "scope": (f"page {page}" if page else "site") + (f", {device}" if device else ""),
            "assessment": {"label": verdict["status"], "css": _VERDICT_CSS[verdict["status"]],
                           "detail": verdict["reason"]}}


def _vital_row(summary_: dict[str, Any]) -> dict[str, Any]:
    return {"name": summary_["name"], "unit": summary_["unit"], "p75": summary_["p75"],
            "count": summary_["samples"], "rating": summary_["rating"] or "",
            "distribution": None if not summary_["samples"] else {
                "good": summary_["good"], "needs_improvement": summary_["needs_improvement"],
                "poor": summary_["poor"]}}


SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def alerts(board: Board) -> dict[str, Any]:
    items = sorted(open_alerts().select_related("acknowledged_by")[:50],
                   key=lambda a: (a.acknowledged, SEVERITY_ORDER.get(a.severity, 3),
                                  -(a.state_since or a.timestamp).timestamp()))[:20]
    rows = [{"pk": str(a.pk), "severity": a.severity, "message": a.message,
             "since": a.state_since or a.timestamp, "acknowledged": a.acknowledged,
             "acknowledged_by": a.acknowledged_by.get_username() if a.acknowledged_by else "",
             "value": a.actual_value, "threshold": a.threshold, "state": a.state,
             "silenced": a.silenced or a.in_maintenance,
             "url": board.url("alert", a.pk), "ack_url": board.url("acknowledge", a.pk)}
            for a in items]
    return {"alerts": rows, "empty": not rows,
            "empty_text": "No open alerts."}


def trends(board: Board) -> dict[str, Any]:
    data = board.part("trends")
    points = data["requests"]
    if not any(p["count"] for p in points):
        return {"empty": True}

    def series(key: str, scale: float = 1.0) -> list[tuple[datetime, float | None]]:
        return [(datetime.fromisoformat(p["t"]),
                 None if p[key] is None or not p["count"] else p[key] * scale) for p in points]

    throughput = [(datetime.fromisoformat(p["t"]), p["throughput_per_minute"]) for p in points]
    lcp = [(datetime.fromisoformat(p["t"]), p["p75"]) for p in data["lcp_p75"]]
    bucket = int(data["bucket_seconds"] // 60)
    return {
        "empty": False, "bucket": f"{bucket} min" if bucket < 60 else f"{bucket // 60} h",
        "latency": charts.timeline([("p50", series("p50")), ("p95", series("p95"))], unit="ms",
                                   title="Server latency p50 / p95 (ms)"),
        "throughput": charts.timeline([("requests / min", throughput)], unit="/min",
                                      title="Throughput (requests per minute)"),
        "errors": charts.timeline([("error rate", series("error_rate", 100.0))], unit="%",
                                  title="Error rate (%)"),
        "vitals": charts.timeline([("LCP p75", lcp)], unit="ms", title="LCP p75 (ms)",
                                  threshold=("good ≤ 2500 ms", VITALS["LCP"].good))
        if any(p["count"] for p in data["lcp_p75"]) else None,
    }


def routes(board: Board) -> dict[str, Any]:
    rows = [{"route": r["route"], "method": r["method"], "count": r["count"], "p50": r["p50"],
             "p95": r["p95"], "error_rate": _pct(r["error_rate"]),
             "total_s": r["total_time_ms"] / 1000.0,
             "url": board.url("route", query=f"name={_q(r['route'])}&method={_q(r['method'])}&"
                              f"{board.controls.query_string()}")}
            for r in board.part("top_routes")]
    return {"rows": rows, "empty": not rows}


def _pct(rate_: float | None) -> float | None:
    return None if rate_ is None else rate_ * 100.0


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def journeys(board: Board) -> dict[str, Any]:
    from perfmonitor.journeys import analyze_journey, journey_types

    active = query.stats("journey", window=board.window, dimension="started",
                         group_by=("name",))
    rows = []
    for key, definition in journey_types().items():
        if not active.get((key,)):
            continue  # nothing started in the window: skip the analysis
        analysis = analyze_journey(key, board.window)
        rows.append(journey_row(board, key, definition.label, analysis))
    rows.sort(key=lambda r: -r["started"])
    return {"rows": rows, "empty": not rows}


def journey_row(board: Board, key: str, label: str, analysis: dict[str, Any]) -> dict[str, Any]:
    counts, steps = analysis["counts"], analysis["funnel"]["steps"]
    bottleneck = analysis["bottleneck"]
    ended = analysis["funnel"]["ended"]
    bars = [(s["label"], float(s["reached"])) for s in steps]
    return {"key": key, "label": label, "started": counts["started"],
            "completed": counts["completed"], "ended": counts["ended"],
            "completion_rate": analysis["rates"]["completion_rate"],
            "p75_ms": analysis["duration"]["p75_ms"],
            "target_ms": analysis["duration"]["target_ms"],
            "apdex": analysis["apdex"]["score"],
            "bottleneck": bottleneck["step"] if bottleneck else "",
            "bottleneck_reason": bottleneck["reason"] if bottleneck else "",
            "url": board.url("journey", key),
            "funnel_chart": charts.bars(bars, unit="", title=f"{label} funnel", width=460,
                                        bar_height=10) if ended else None}


BUNDLE_PARTS = ("js_transfer", "css_transfer")
BUNDLE_CHART_PAGES = 3


def bundles(board: Board) -> dict[str, Any]:
    """JS + CSS transfer per page (p75 of each, summed) against the budget, and over time."""
    page = board.controls.page or None
    grouped = query.stats("resource", window=board.window, name=page, dimension=BUNDLE_PARTS,
                          group_by=("name", "dimension"))
    pages: dict[str, float] = {}
    for (name, _), s in grouped.items():
        pages[name] = pages.get(name, 0.0) + (s.p75 or 0.0)
    budget = settings.BUNDLE_SIZE_BYTES
    ranked = sorted(pages.items(), key=lambda kv: -kv[1])
    rows = [{"page": name, "bytes": size, "over": size > budget} for name, size in ranked[:10]]
    series = []
    for name, _ in ranked[:BUNDLE_CHART_PAGES]:
        parts = [query.trend("resource", window=board.window, name=name, dimension=part,
                             bucket=board.controls.trend_bucket)
                 for part in BUNDLE_PARTS]
        points = []
        for buckets in zip(*parts, strict=True):
            values = [s.p75 for _, s in buckets if s.count]
            points.append((buckets[0][0], sum(values) if values else None))
        series.append((name, points))
    chart = charts.timeline(series, unit="B", title="JS + CSS transfer per page (bytes)",
                            threshold=("budget", float(budget))) if series else None
    return {"rows": rows, "budget": budget, "chart": chart, "empty": not rows}


def insights(board: Board) -> dict[str, Any]:
    from perfmonitor.analytics.insights import generate_insights

    items = []
    for finding in generate_insights(board.window, limit=10):
        target = finding.get("target") or {}
        link = ""
        if target.get("fingerprint"):
            link = board.url("query", target["fingerprint"])
        elif target.get("route"):
            link = board.url("route", query=f"name={_q(target['route'])}&"
                             f"{board.controls.query_string()}")
        elif target.get("page"):
            link = board.url("page", query=f"url={_q(target['page'])}&"
                             f"{board.controls.query_string()}")
        impact = finding["impact"]
        items.append({"title": finding["title"], "severity": finding["severity"],
                      "recommendation": finding["recommendation"], "url": link,
                      "ms_lost": impact["ms_lost"], "affected": impact["affected"],
                      "how": impact["how"], "priority": finding.get("priority"),
                      "rule": finding["rule"]})
    return {"items": items, "empty": not items,
            "empty_text": "Nothing to fix in this window: no rule found a problem."}
