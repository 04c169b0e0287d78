"""Drill-down pages: one route, one query fingerprint, one page, one journey, one alert."""

from __future__ import annotations

import math
from typing import Any

from perfmonitor.analytics import query
from perfmonitor.analytics.sketch import QuantileSketch
from perfmonitor.analytics.vitals import VITALS, rate
from perfmonitor.dashboard import charts
from perfmonitor.dashboard.controls import Controls
from perfmonitor.dashboard.sources import optional


class NotFound(LookupError):
    pass


class BadParameter(ValueError):
    pass


HISTOGRAM_BINS = 24


def histogram(sketch: QuantileSketch, unit: str, label: str) -> Any:
    """Bars over log-spaced latency ranges, read from the merged sketch's buckets."""
    from ddsketch.mapping import LogarithmicMapping

    from perfmonitor.analytics.sketch import RELATIVE_ACCURACY

    if sketch.count <= 0 or not sketch.bins:
        return None
    mapping = LogarithmicMapping(RELATIVE_ACCURACY)
    keys = sorted(sketch.bins)
    low, high = mapping.value(keys[0]), mapping.value(keys[-1])
    lo, hi = math.log10(max(low, 1e-3)), math.log10(max(high, low * 1.0001, 1e-3))
    width = (hi - lo) / HISTOGRAM_BINS or 1.0
    counts = [0.0] * HISTOGRAM_BINS
    for key, weight in sketch.bins.items():
        slot = min(HISTOGRAM_BINS - 1, int((math.log10(max(mapping.value(key), 1e-3)) - lo)
                                           / width))
        counts[slot] += weight
    if sketch.zero_count:
        counts[0] += sketch.zero_count
    bars = []
    for i, n in enumerate(counts):
        start, end = 10 ** (lo + i * width), 10 ** (lo + (i + 1) * width)
        bars.append((charts._fmt(start, unit), n,
                     f"{charts._fmt(start, unit)} – {charts._fmt(end, unit)}: {n:.0f}"))
    return charts.bar_chart(bars, unit="", label=label)


def route(controls: Controls, name: str, method: str = "") -> dict[str, Any]:
    if not name:
        raise BadParameter("name (the route template, e.g. /courses/<int:pk>/) is required")
    window = controls.window()
    by_method = query.stats("request", window=window, name=name, dimension=method or None,
                            group_by=("dimension",))
    stats = query.total("request", window=window, name=name, dimension=method or None)
    queries = []
    if stats.count:
        # Query rollups name their origin "METHOD route" (capture/records.py).
        origins = [f"{m} {name}" for (m,) in by_method]
        by_fp = query.stats("query", window=window, group_by=("name",), dimension=origins)
        from perfmonitor.models import QueryFingerprint

        ranked = sorted(by_fp.items(), key=lambda kv: -kv[1].sum)[:15]
        sql = dict(QueryFingerprint.objects.filter(fingerprint__in=[k[0] for k, _ in ranked])
                   .values_list("fingerprint", "sql"))
        per_request = stats.count or 1
        queries = [{"fingerprint": fp, "sql": sql.get(fp, ""), "count": s.count,
                    "per_request": s.count / per_request, "p95": s.p95, "total_ms": s.sum,
                    "n_plus_one": s.count / per_request >= _n_plus_one_threshold()}
                   for (fp,), s in ranked]
    return {"name": name, "method": method, "stats": stats.as_dict(window),
            "empty": not stats.count, "queries": queries,
            "histogram": histogram(stats.sketch, "ms", f"Latency distribution of {name} (ms)")}


def _n_plus_one_threshold() -> int:
    from perfmonitor.conf import settings

    return settings.N_PLUS_ONE_THRESHOLD


def query_detail(controls: Controls, fingerprint: str) -> dict[str, Any]:
    from perfmonitor.models import QueryFingerprint

    window = controls.window()
    sql = QueryFingerprint.objects.filter(fingerprint=fingerprint).values_list(
        "sql", flat=True).first()
    by_origin = query.stats("query", window=window, name=fingerprint, group_by=("dimension",))
    if sql is None and not by_origin:
        raise NotFound(f"No query fingerprint {fingerprint!r}.")
    total = query.total("query", window=window, name=fingerprint)
    points = query.trend("query", window=window, name=fingerprint)
    chart = charts.line_chart([("p95", [(t, s.p95) for t, s in points])], unit="ms",
                              label=f"Query {fingerprint} p95 (ms)") if total.count else None
    origins = [{"origin": origin, "count": s.count, "p95": s.p95, "total_ms": s.sum}
               for (origin,), s in sorted(by_origin.items(), key=lambda kv: -kv[1].sum)]
    return {"fingerprint": fingerprint, "sql": sql or "", "stats": total.as_dict(window),
            "origins": origins, "chart": chart, "empty": not total.count}


def page(controls: Controls, url: str) -> dict[str, Any]:
    if not url:
        raise BadParameter("url (the page path, e.g. /courses/) is required")
    window = controls.window()
    rows = []
    for name, spec in VITALS.items():
        s = query.total("vital", window=window, name=name, dimension=url)
        if not s.count and not spec.scored:
            continue
        rows.append({"name": name, "unit": spec.unit, "p75": s.p75, "count": s.count,
                     "rating": rate(name, s.p75) if s.p75 is not None else ""})
    return {"url": url, "rows": rows, "empty": not any(r["count"] for r in rows)}


def journey(controls: Controls, journey_type: str) -> dict[str, Any]:
    get_definition = optional("perfmonitor.journeys.definitions", "get_definition")
    if get_definition is None:
        raise NotFound("Journeys are not installed.")
    try:
        definition = get_definition(journey_type)
    except LookupError as exc:
        raise NotFound(str(exc)) from exc
    except Exception as exc:
        raise NotFound(str(exc)) from exc
    analyze = optional("perfmonitor.journeys", "analyze_journey")
    return {"definition": definition, "analysis": None if analyze is None else None,
            "empty": True}


def alert(controls: Controls, alert_pk: str) -> dict[str, Any]:
    from django.core.exceptions import ValidationError

    from perfmonitor.models import PerformanceAlert

    try:
        item = PerformanceAlert.objects.get(pk=alert_pk)
    except (PerformanceAlert.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound(f"No alert {alert_pk!r}.") from exc
    return {"alert": item, "timeline": [], "deliveries": [], "empty": False}
