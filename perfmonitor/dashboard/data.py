"""Panel data: calls into analytics, journeys and alerting, shaped for templates.

Every number comes from a function of those packages (the rollup query layer
``perfmonitor.analytics.query`` and the higher-level summaries built on it);
this module only picks, orders and labels. Where a package is not installed
in this version the panel says so instead of showing a made-up value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfmonitor.analytics import assessment, query, scores
from perfmonitor.analytics.vitals import VITALS
from perfmonitor.conf import settings
from perfmonitor.dashboard import charts
from perfmonitor.dashboard.controls import Controls
from perfmonitor.dashboard.sources import optional

if TYPE_CHECKING:
    from perfmonitor.dashboard.panels import Board

EMPTY = "No data in this window."
SCORED_VITALS = ("LCP", "INP", "CLS", "FCP", "TTFB")


def summary(window: query.Window, controls: Controls) -> Any:
    build = optional("perfmonitor.analytics.overview", "dashboard_summary")
    return build(window, controls.filters()) if build is not None else None


def change(current: float | None, previous: float | None) -> float | None:
    """Percent change against the previous window (None when either side is missing)."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous * 100.0


def card(label: str, value: float | None, previous: float | None, unit: str,
         better: str = "lower", digits: int = 0, href: str = "") -> dict[str, Any]:
    pct = change(value, previous)
    direction = "flat" if pct is None or abs(pct) < 1 else "up" if pct > 0 else "down"
    good = None if direction == "flat" or better == "none" else (
        (direction == "down") == (better == "lower"))
    return {"label": label, "value": value, "unit": unit, "digits": digits,
            "previous": previous, "change": pct, "direction": direction,
            "tone": "" if good is None else "good" if good else "bad", "href": href}


def _request_totals(board: Board, window: query.Window) -> query.SeriesStats:
    route = board.controls.route or None
    return query.total("request", window=window, name=route)


def score(board: Board) -> dict[str, Any]:
    analysis = scores.analyze_performance(board.window)
    value = analysis["score"]
    weights = analysis["weights"]
    parts = [{"name": PART_LABELS.get(key, key),
              "score": None if part["score"] is None else part["score"] * 100,
              "weight": weights.get(key), "used": key in analysis["used"], "detail": part["how"]}
             for key, part in analysis["parts"].items()]
    return {"score": value, "low": analysis["low"], "parts": parts, "how": analysis["how"],
            "empty": value is None, "empty_text": EMPTY,
            "gauge": charts.gauge(value, label="Performance score (0-100)")}


PART_LABELS = {"frontend": "Front end (Web Vitals)", "server": "Server (Apdex)",
               "journeys": "Journeys (Apdex)"}


def cards(board: Board) -> dict[str, Any]:
    window = board.window
    now, before = _request_totals(board, window), _request_totals(board, window.previous())
    result = [
        card("Requests / min", now.throughput_per_minute(window) if now.count else None,
             before.throughput_per_minute(window.previous()) if before.count else None,
             "/min", better="none", digits=1),
        card("p95 latency", now.p95, before.p95, "ms"),
        card("Error rate", _pct(now.error_rate), _pct(before.error_rate), "%", digits=2),
    ]
    open_now = data_open_alert_count()
    result.append(card("Open alerts", open_now, None, "", better="lower"))
    completion = journey_completion(board)
    result.append(card("Journey completion", completion[0], completion[1], "%",
                       better="higher", digits=1))
    return {"cards": result, "empty": not now.count and not open_now and completion[0] is None}


def _pct(rate_: float | None) -> float | None:
    return None if rate_ is None else rate_ * 100.0


def open_alerts() -> Any:
    from perfmonitor.models import PerformanceAlert
    from perfmonitor.models.alerts import OPEN_STATES

    return PerformanceAlert.objects.filter(state__in=OPEN_STATES)


def data_open_alert_count() -> int:
    return open_alerts().count()


def journey_completion(board: Board) -> tuple[float | None, float | None]:
    """Completed / ended journeys, this window and the previous one, in percent.

    Reads the journey rollups that ``perfmonitor.journeys.journey_metric``
    reads, all types at once (one query per window instead of one per type).
    """
    def rate(window: query.Window) -> float | None:
        endings = query.stats("journey", window=window, dimension=JOURNEY_ENDINGS,
                              group_by=("dimension",))
        ended = sum(s.count for s in endings.values())
        done = endings.get(("completed",))
        return 100.0 * done.count / ended if ended and done else (0.0 if ended else None)

    return rate(board.window), rate(board.window.previous())


JOURNEY_ENDINGS = ("completed", "abandoned", "failed")


def vitals(board: Board) -> dict[str, Any]:
    page = board.controls.page or None
    pages = assessment.assess_pages(board.window, page)
    site = (pages[0] if page and pages else assessment.assess_site(board.window))
    rows = [_vital_row(site["vitals"][name]) for name in SCORED_VITALS]
    verdict = site["assessment"]
    page_rows = []
    for item in sorted(pages, key=lambda p: (_VERDICT_ORDER[p["assessment"]["status"]],
                                             -p["samples"]))[:10]:
        page_rows.append({"page": item["page"], "label": item["assessment"]["status"],
                          "css": _VERDICT_CSS[item["assessment"]["status"]],
                          "reason": item["assessment"]["reason"],
                          "url": board.url("page", query=f"url={_q(item['page'])}&"
                                           f"{board.controls.query_string()}"),
                          **{name: _vital_row(item["vitals"][name])
                             for name in ("LCP", "INP", "CLS")}})
    return {"rows": rows, "pages": page_rows, "empty": not any(r["count"] for r in rows),
            "assessment": {"label": verdict["status"], "css": _VERDICT_CSS[verdict["status"]],
                           "detail": verdict["reason"]}}


_VERDICT_ORDER = {assessment.FAILED: 0, assessment.NOT_ASSESSABLE: 1, assessment.PASSED: 2}
_VERDICT_CSS = {assessment.FAILED: "poor", assessment.NOT_ASSESSABLE: "none",
                assessment.PASSED: "good"}


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
    stats_fn = optional("perfmonitor.alerts", "alert_statistics")
    statistics = ""
    if stats_fn is not None:
        try:
            statistics = _alert_statistics_line(stats_fn(board.window))
        except ImportError:  # the statistics module is not installed in this version
            statistics = ""
    rows = [{"pk": str(a.pk), "severity": a.severity, "message": a.message,
             "since": a.state_since or a.timestamp, "acknowledged": a.acknowledged,
             "acknowledged_by": a.acknowledged_by.get_username() if a.acknowledged_by else "",
             "value": a.actual_value, "threshold": a.threshold, "state": a.state,
             "silenced": a.silenced or a.in_maintenance,
             "url": board.url("alert", a.pk), "ack_url": board.url("acknowledge", a.pk)}
            for a in items]
    return {"alerts": rows, "statistics": statistics, "empty": not rows,
            "empty_text": "No open alerts."}


def _alert_statistics_line(stats_: dict[str, Any]) -> str:
    parts = [f"{stats_['fired']} fired", f"{stats_['acknowledged']} acknowledged",
             f"{stats_['resolved']} resolved"]
    for key, label in (("mtta_seconds", "MTTA"), ("mttr_seconds", "MTTR")):
        if stats_.get(key) is not None:
            parts.append(f"{label} {stats_[key] / 60:.1f} min")
    return "In this window: " + " · ".join(parts)


def trends(board: Board) -> dict[str, Any]:
    route = board.controls.route or None
    points = query.trend("request", window=board.window, name=route)
    count = sum(s.count for _, s in points)
    if not count:
        return {"empty": True}
    minutes = (points[1][0] - points[0][0]).total_seconds() / 60 if len(points) > 1 else 1
    latency = charts.line_chart(
        [("p50", [(t, s.p50) for t, s in points]), ("p95", [(t, s.p95) for t, s in points])],
        unit="ms", label="Server latency p50 / p95 (ms)")
    throughput = charts.line_chart(
        [("requests/min", [(t, s.count / minutes) for t, s in points])],
        unit="/min", label="Throughput (requests per minute)")
    errors = charts.line_chart(
        [("error rate", [(t, _pct(s.error_rate)) for t, s in points])],
        unit="%", label="Error rate (%)")
    page = board.controls.page or None
    lcp = query.trend("vital", window=board.window, name="LCP", dimension=page)
    vital_chart = charts.line_chart(
        [("LCP p75", [(t, s.p75) for t, s in lcp])], unit="ms", label="LCP p75 (ms)",
        threshold=VITALS["LCP"].good) if any(s.count for _, s in lcp) else None
    return {"empty": False, "latency": latency, "throughput": throughput, "errors": errors,
            "vitals": vital_chart}


def routes(board: Board) -> dict[str, Any]:
    grouped = query.stats("request", window=board.window, group_by=("name", "dimension"),
                          name=board.controls.route or None)
    ranked = sorted(grouped.items(), key=lambda kv: -kv[1].sum)[:10]
    rows = [{"route": name, "method": method, "count": s.count, "p50": s.p50, "p95": s.p95,
             "error_rate": _pct(s.error_rate), "total_s": s.sum / 1000.0,
             "url": board.url("route", query=f"name={_q(name)}&method={_q(method)}&"
                              f"{board.controls.query_string()}")}
            for (name, method), s in ranked]
    return {"rows": rows, "empty": not rows}


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
    bars = [(s["label"], float(s["reached"]),
             f"{s['label']}: {s['reached']} of {ended} reached"
             + (f" ({s['step_conversion'] * 100:.0f} % of the step before)"
                if s["step_conversion"] is not None else "")) for s in steps]
    return {"key": key, "label": label, "started": counts["started"],
            "completed": counts["completed"], "ended": counts["ended"],
            "completion_rate": analysis["rates"]["completion_rate"],
            "p75_ms": analysis["duration"]["p75_ms"],
            "target_ms": analysis["duration"]["target_ms"],
            "apdex": analysis["apdex"]["score"],
            "bottleneck": bottleneck["step"] if bottleneck else "",
            "bottleneck_reason": bottleneck["reason"] if bottleneck else "",
            "url": board.url("journey", key),
            "funnel_chart": charts.funnel(bars, label=f"{label} funnel") if ended else None}


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
        parts = [query.trend("resource", window=board.window, name=name, dimension=part)
                 for part in BUNDLE_PARTS]
        points = []
        for buckets in zip(*parts, strict=True):
            values = [s.p75 for _, s in buckets if s.count]
            points.append((buckets[0][0], sum(values) if values else None))
        series.append((name, points))
    chart = charts.line_chart(series, unit="B", label="JS + CSS transfer per page (bytes)",
                              threshold=float(budget)) if series else None
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


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)
