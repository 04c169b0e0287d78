"""The dashboard overview's query set as one call: ``dashboard_summary(window, filters)``.

Everything the overview page needs — the score and its breakdown, overview
cards with the change against the previous equal window, Web Vitals p75 per
page with the Core Web Vitals verdict, the top routes and the trends — from
the rollups, with the watermarks read once so every number is from the same
cover of the window.

Filters: ``route`` narrows the server numbers to one route template, ``page``
the vitals to one page, ``device`` (mobile, tablet, desktop) the vitals to the
page loads of one device class (the ``vital:<device>`` series). Each filter
applies to the panels whose data has that dimension; ``scope`` in the result
says which, so a caller never shows unfiltered numbers as filtered. Unknown
filter keys are reported back under ``unsupported``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from perfmonitor.analytics import scores
from perfmonitor.analytics.assessment import assess_pages
from perfmonitor.analytics.query import (
    SeriesStats,
    Window,
    change,
    default_bucket,
    pinned_marks,
    prepare_sketches,
    stats,
    total,
    trend_points,
)
from perfmonitor.analytics.vitals import vital_kind

SUPPORTED_FILTERS = ("route", "page", "device")
# What each filter narrows; the other numbers are for every route / page / device.
FILTER_SCOPE = {
    "route": "server numbers (cards, top routes, request trends)",
    "page": "Web Vitals and the LCP trend",
    "device": "Web Vitals and the LCP trend",
}


def _card(key: str, label: str, unit: str, current: float | None, previous: float | None,
          better: str) -> dict[str, Any]:
    delta = change(current, previous)
    direction = None
    if delta is not None and abs(delta) >= 0.005:
        worse = delta > 0 if better == "lower" else delta < 0
        direction = "worse" if worse else "better"
    return {"key": key, "label": label, "unit": unit, "value": current, "previous": previous,
            "change": delta, "direction": direction}


def _journey_completion(window: Window) -> tuple[float | None, int]:
    ended = stats("journey", window=window, dimension=("completed", "abandoned", "failed"),
                  group_by=("dimension",))
    n = sum(s.count for s in ended.values())
    done = ended.get(("completed",), SeriesStats()).count
    return (done / n if n else None), n


def _open_alerts() -> int | None:
    """Alert episodes in one of the alerting package's open states."""
    try:
        from perfmonitor.models import PerformanceAlert
        from perfmonitor.models.alerts import OPEN_STATES

        return PerformanceAlert.objects.filter(state__in=OPEN_STATES).count()
    except Exception:  # alert table shape owned by the alerting package
        return None


def cards(window: Window, route: str | None = None) -> list[dict[str, Any]]:
    now = total("request", window=window, name=route)
    before = total("request", window=window.previous(), name=route)
    prev_window = window.previous()
    completion, _ = _journey_completion(window)
    prev_completion, _ = _journey_completion(prev_window)
    return [
        _card("throughput", "Requests per minute", "/min", now.throughput_per_minute(window),
              before.throughput_per_minute(prev_window), "higher"),
        _card("p95", "p95 response time", "ms", now.p95, before.p95, "lower"),
        _card("error_rate", "Error rate", "%",
              100 * now.error_rate if now.error_rate is not None else None,
              100 * before.error_rate if before.error_rate is not None else None, "lower"),
        _card("journey_completion", "Journey completion", "%",
              100 * completion if completion is not None else None,
              100 * prev_completion if prev_completion is not None else None, "higher"),
        {"key": "open_alerts", "label": "Open alerts", "unit": "", "value": _open_alerts(),
         "previous": None, "change": None, "direction": None},
    ]


def top_routes(routes: dict[tuple, SeriesStats], window: Window,
               limit: int = 10) -> list[dict[str, Any]]:
    ranked = sorted(routes.items(), key=lambda item: (-item[1].sum, item[0]))[:limit]
    prepare_sketches(s for _key, s in ranked)
    rows = []
    for (route, method), s in ranked:
        qs = s.sketch.quantiles((0.5, 0.95)) if s.count else {}
        rows.append({"route": route, "method": method, "count": s.count,
                     "total_time_ms": s.sum, "mean": s.mean, "p50": s._clamp(qs.get(0.5)),
                     "p95": s._clamp(qs.get(0.95)), "error_rate": s.error_rate,
                     "throughput_per_minute": s.throughput_per_minute(window)})
    return rows


def overview_bucket(window: Window) -> timedelta:
    """Minute buckets up to 6 h, hourly up to 7 days, 6-hourly beyond.

    A 30-day chart of hourly points is 720 points on a few hundred pixels:
    beyond a week the overview draws 6-hour points (120 for 30 days). Pass
    ``trend_bucket`` to :func:`dashboard_summary` for another resolution.
    """
    if window.span > timedelta(days=7):
        return timedelta(hours=6)
    return default_bucket(window)


def trends(window: Window, route: str | None = None, page: str | None = None,
           bucket: timedelta | None = None, device: str | None = None) -> dict[str, Any]:
    """Requests (p50, p95, throughput, error rate) and LCP p75 over time."""
    step = bucket or overview_bucket(window)
    requests = trend_points("request", window=window, name=route, bucket=step)
    lcp = trend_points(vital_kind(device), window=window, name="LCP", dimension=page,
                       qs=(0.75,), bucket=step)
    keep = ("t", "count", "p50", "p95", "error_rate", "throughput_per_minute")
    return {"bucket_seconds": step.total_seconds(),
            "requests": [{k: p[k] for k in keep} for p in requests],
            "lcp_p75": [{"t": p["t"], "p75": p["p75"], "count": p["count"]} for p in lcp]}


def dashboard_summary(window: Window, filters: Mapping[str, str] | None = None,
                      trend_bucket: timedelta | None = None) -> dict[str, Any]:
    """Score, overview cards, vitals per page, top routes and trends for one window."""
    filters = dict(filters or {})
    route = filters.get("route") or None
    page = filters.get("page") or None
    device = filters.get("device") or None
    with pinned_marks():
        routes = stats("request", window=window, name=route, group_by=("name", "dimension"))
        by_route: dict[tuple, SeriesStats] = {}
        for (name, _method), s in routes.items():
            by_route.setdefault((name,), SeriesStats()).merge(s)
        analysis = scores.analyze_performance(window, routes=by_route)
        summary = {
            "window": window.as_dict(),
            "filters": {k: v for k, v in filters.items() if v},
            "unsupported": [k for k, v in filters.items() if v and k not in SUPPORTED_FILTERS],
            "scope": {k: FILTER_SCOPE[k] for k, v in filters.items() if v and k in FILTER_SCOPE},
            "score": analysis,
            "cards": cards(window, route),
            "vitals": assess_pages(window, page, device),
            "top_routes": top_routes(routes, window),
            "trends": trends(window, route, page, trend_bucket, device),
        }
    return summary
