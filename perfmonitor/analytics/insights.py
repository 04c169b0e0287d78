"""Insights: deterministic rules that turn rollups into prioritized recommendations.

Each rule returns findings with the evidence that triggered it and an
estimated impact, "time lost x traffic", in milliseconds of user waiting
over the window, so findings of different kinds can be ranked together:

============== ==========================================================
rule           time lost
============== ==========================================================
n_plus_one     per occurrence, the repeated queries' time minus one query
               (what batching with select_related / prefetch_related saves)
slow_query     time the fingerprint spent beyond SLOW_QUERY_MS
slow_route     time requests spent beyond SLOW_API_MS
slow_api       browser API calls' time beyond SLOW_API_MS
slow_render    component renders' time beyond SLOW_RENDER_MS
poor_vital     (p75 - good threshold) x page views, for LCP / INP / FCP /
               TTFB; CLS has no time, it ranks by its views only
large_bundle   bytes over BUNDLE_SIZE_BYTES at a slow-4G 200 KB/s, x views
error_rate     failed requests x their route's median duration
error_spike    JS errors this window vs the previous one (count only)
regression     (mean now - mean before) x requests now
============== ==========================================================

Thresholds come from settings (the original design's ``setThresholds``).
The only raw rows read are the N+1 detail rows, which capture always keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Count, IntegerField, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from perfmonitor.analytics.query import SeriesStats, Window, prepare_sketches, stats
from perfmonitor.analytics.vitals import GOOD, VITALS, rate
from perfmonitor.conf import settings
from perfmonitor.models import PerformanceMetric, QueryFingerprint

CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITY_RANK = {CRITICAL: 0, WARNING: 1, INFO: 2}
SLOW_4G_BYTES_PER_MS = 200.0  # 200 KB/s: Lighthouse's slow-4G throughput, for bundle time
MIN_COUNT = 5  # series with fewer samples say nothing reliable
MAX_PER_RULE = 10


def _finding(rule: str, severity: str, title: str, recommendation: str, *,
             evidence: dict[str, Any], ms_lost: float | None, affected: int, how: str,
             target: dict[str, str]) -> dict[str, Any]:
    return {"rule": rule, "severity": severity, "title": title,
            "recommendation": recommendation, "evidence": evidence, "target": target,
            "impact": {"ms_lost": round(ms_lost, 1) if ms_lost is not None else None,
                       "affected": affected, "how": how}}


def _sql_of(fingerprints: list[str]) -> dict[str, str]:
    return dict(QueryFingerprint.objects.filter(fingerprint__in=fingerprints)
                .values_list("fingerprint", "sql"))


def _split_origin(origin: str) -> tuple[str, str]:
    method, _, route = origin.partition(" ")
    return (method, route) if route.startswith("/") else ("", origin)


# -- rules ----------------------------------------------------------------------------------


def n_plus_one(window: Window) -> list[dict[str, Any]]:
    grouped = (PerformanceMetric.objects
            .filter(metric_type="query", metadata__n_plus_one=True,
                    timestamp__gte=window.start, timestamp__lt=window.end)
            .values("metric_name", origin=KT("metadata__origin"))
            .annotate(occurrences=Count("id"), total_ms=Sum("duration"),
                      queries=Sum(Cast(KT("metadata__count"), IntegerField())))
            .order_by("-total_ms")[:MAX_PER_RULE * 5])
    rows = list(grouped)
    sqls = _sql_of([r["metric_name"] for r in rows])
    rollups = stats("query", window=window, name=[r["metric_name"] for r in rows],
                    dimension=[r["origin"] or "" for r in rows], group_by=("name", "dimension"))
    findings = []
    for r in rows:
        occurrences, queries, total_ms = r["occurrences"], r["queries"] or 0, r["total_ms"] or 0.0
        per_request = queries / occurrences if occurrences else 0
        lost = total_ms * (1 - 1 / per_request) if per_request > 1 else 0.0
        method, route = _split_origin(r["origin"] or "")
        fp = r["metric_name"]
        rollup = rollups.get((fp, r["origin"] or ""), SeriesStats())
        findings.append(_finding(
            "n_plus_one", CRITICAL if per_request >= 20 else WARNING,
            f"N+1 queries on {route or r['origin']}: {per_request:.0f} x the same query "
            f"per request",
            "Load the related rows in one query (select_related / prefetch_related) instead "
            "of one query per item.",
            evidence={"route": route, "method": method, "fingerprint": fp,
                      "sql": sqls.get(fp, ""), "requests_affected": occurrences,
                      "queries_per_request": round(per_request, 1),
                      "repeated_query_ms": round(total_ms, 1),
                      "fingerprint_executions_in_window": rollup.count,
                      "fingerprint_total_ms_in_window": round(rollup.sum, 1)},
            ms_lost=lost, affected=occurrences,
            how="per request: repeated queries' time x (1 - 1 / queries per request), summed",
            target={"route": route, "fingerprint": fp}))
    return findings


def _excess_rule(kind: str, rule: str, threshold: float, group_by: tuple[str, ...],
                 describe: Callable[[tuple, SeriesStats], tuple[str, str, dict[str, str]]],
                 window: Window) -> list[dict[str, Any]]:
    findings = []
    candidates = {key: s for key, s in stats(kind, window=window, group_by=group_by).items()
                  if s.count >= MIN_COUNT and s.max is not None and s.max > threshold}
    prepare_sketches(candidates.values())
    for key, s in candidates.items():
        p95 = s.p95
        if p95 is None or p95 <= threshold:
            continue
        lost = s.sketch.excess_over(threshold)
        title, recommendation, target = describe(key, s)
        slow_share = 1 - s.sketch.count_at_most(threshold) / s.sketch.count
        findings.append(_finding(
            rule, CRITICAL if p95 > 2 * threshold else WARNING, title, recommendation,
            evidence={"count": s.count, "p50": s.p50, "p95": p95, "p99": s.p99,
                      "threshold_ms": threshold, "share_over_threshold": round(slow_share, 4),
                      **target},
            ms_lost=lost, affected=round(slow_share * s.count),
            how=f"time spent beyond {threshold:g} ms, summed over the window", target=target))
    return findings


def slow_queries(window: Window) -> list[dict[str, Any]]:
    threshold = float(settings.SLOW_QUERY_MS)
    found = _excess_rule("query", "slow_query", threshold, ("name",), lambda key, s: (
        f"Slow query {key[0]}: p95 {s.p95:.0f} ms",
        "Check its plan with EXPLAIN ANALYZE; add the missing index or narrow the query.",
        {"fingerprint": key[0]}), window)
    sqls = _sql_of([f["target"]["fingerprint"] for f in found])
    for f in found:
        f["evidence"]["sql"] = sqls.get(f["target"]["fingerprint"], "")
    return found


def slow_routes(window: Window) -> list[dict[str, Any]]:
    return _excess_rule("request", "slow_route", float(settings.SLOW_API_MS),
                        ("name", "dimension"), lambda key, s: (
                            f"Slow route {key[1]} {key[0]}: p95 {s.p95:.0f} ms",
                            "Profile the view: look at its queries per request and its slowest "
                            "fingerprints; cache or move heavy work to a task.",
                            {"route": key[0], "method": key[1]}), window)


def slow_api_calls(window: Window) -> list[dict[str, Any]]:
    return _excess_rule("api", "slow_api", float(settings.SLOW_API_MS), ("name",),
                        lambda key, s: (f"Slow API call {key[0]}: p95 {s.p95:.0f} ms in browsers",
                                        "Speed up the endpoint or cache its response; avoid "
                                        "calling it on the critical path of the page.",
                                        {"endpoint": key[0]}), window)


def slow_renders(window: Window) -> list[dict[str, Any]]:
    return _excess_rule("render", "slow_render", float(settings.SLOW_RENDER_MS), ("name",),
                        lambda key, s: (f"Slow render of {key[0]}: p95 {s.p95:.0f} ms",
                                        "Memoize the component, virtualize long lists and move "
                                        "work out of render.", {"component": key[0]}), window)


def poor_vitals(window: Window) -> list[dict[str, Any]]:
    grouped = stats("vital", window=window, group_by=("dimension", "name"))
    prepare_sketches(grouped.values())
    findings = []
    for (page, name), s in grouped.items():
        spec = VITALS.get(name)
        if spec is None or not spec.scored or s.count < MIN_COUNT:
            continue
        p75 = s.p75
        if p75 is None or rate(name, p75) == GOOD:
            continue
        rating = rate(name, p75)
        evidence: dict[str, Any] = {"page": page, "vital": name, "p75": p75, "samples": s.count,
                                    "rating": rating, "good": spec.good, "poor": spec.poor}
        cause, recommendation = _likely_cause(name, p75, grouped.get((page, "TTFB")), evidence)
        lost = (p75 - spec.good) * s.count if spec.unit == "ms" else None
        findings.append(_finding(
            "poor_vital", CRITICAL if rating == "poor" else WARNING,
            f"{name} {rating} on {page}: p75 {_vital_text(p75, spec.unit)} ({cause})",
            recommendation,
            evidence=evidence | {"likely_cause": cause}, ms_lost=lost, affected=s.count,
            how="(p75 - good threshold) x page views" if lost is not None
            else "layout shift has no time; ranked by page views", target={"page": page}))
    return findings


def _vital_text(value: float, unit: str) -> str:
    return f"{value:.0f} {unit}" if unit == "ms" else f"{value:.3f}"


def _likely_cause(name: str, p75: float, ttfb: SeriesStats | None,
                  evidence: dict[str, Any]) -> tuple[str, str]:
    if name != "LCP":
        return {
            "INP": ("slow interaction handlers",
                    "Break up long tasks in event handlers; yield to the main thread."),
            "CLS": ("content shifting after load",
                    "Reserve space for images, ads and late content (width/height, "
                    "aspect-ratio)."),
            "FCP": ("render-blocking resources", "Inline critical CSS, defer scripts."),
            "TTFB": ("slow server response", "Speed up the view, cache, or use a CDN."),
        }.get(name, ("", ""))
    ttfb_p75 = ttfb.p75 if ttfb is not None and ttfb.count else None
    evidence["ttfb_p75"] = ttfb_p75
    if ttfb_p75 is not None and (ttfb_p75 >= 0.4 * p75 or rate("TTFB", ttfb_p75) != GOOD):
        evidence["render_delay_ms"] = max(0.0, p75 - ttfb_p75)
        return ("TTFB-heavy LCP: the server answers late",
                "Make the server respond faster (slow view, queries, no caching) before "
                "touching the front end.")
    if ttfb_p75 is not None:
        evidence["render_delay_ms"] = max(0.0, p75 - ttfb_p75)
    return ("render delay: the LCP element loads or paints late",
            "Preload the LCP image or font, shrink it, and remove render-blocking scripts.")


def large_bundles(window: Window) -> list[dict[str, Any]]:
    budget = float(settings.BUNDLE_SIZE_BYTES)
    grouped = stats("resource", window=window, dimension=("js_transfer", "css_transfer"),
                    group_by=("name", "dimension"))
    pages: dict[str, dict[str, SeriesStats]] = {}
    for (page, dim), s in grouped.items():
        pages.setdefault(page, {})[dim] = s
    findings = []
    for page, parts in pages.items():
        size = sum((s.p75 or 0.0) for s in parts.values())
        views = max(s.count for s in parts.values())
        if size <= budget or views < 1:
            continue
        lost = (size - budget) / SLOW_4G_BYTES_PER_MS * views
        findings.append(_finding(
            "large_bundle", CRITICAL if size > 2 * budget else WARNING,
            f"Large bundle on {page}: {size / 1024 / 1024:.2f} MiB of JS + CSS",
            "Split the bundle by route, remove unused code, compress (Brotli).",
            evidence={"page": page, "js_css_transfer_p75_bytes": round(size),
                      "budget_bytes": budget, "page_views": views},
            ms_lost=lost, affected=views,
            how="bytes over budget at slow-4G 200 KB/s, x page views", target={"page": page}))
    return findings


def error_rates(window: Window) -> list[dict[str, Any]]:
    limit = float(settings.HIGH_ERROR_RATE) / 100
    findings = []
    for (route, method), s in stats("request", window=window,
                                    group_by=("name", "dimension")).items():
        if s.count < MIN_COUNT or not s.errors or (s.error_rate or 0) <= limit:
            continue
        findings.append(_finding(
            "error_rate", CRITICAL if (s.error_rate or 0) > 2 * limit else WARNING,
            f"{method} {route} fails {100 * (s.error_rate or 0):.1f} % of requests",
            "Look at the failing requests' exceptions in the request log and fix the cause.",
            evidence={"route": route, "method": method, "errors": s.errors, "count": s.count,
                      "error_rate": s.error_rate, "threshold": limit},
            ms_lost=s.errors * (s.p50 or 0.0), affected=s.errors,
            how="failed requests x the route's median duration",
            target={"route": route, "method": method}))
    return findings


def error_spikes(window: Window) -> list[dict[str, Any]]:
    now = stats("error", window=window, group_by=("name",))
    before = stats("error", window=window.previous(), group_by=("name",))
    findings = []
    for (fingerprint,), s in now.items():
        previous = before.get((fingerprint,), SeriesStats()).count
        if s.count < 10 or s.count < 2 * max(previous, 1):
            continue
        findings.append(_finding(
            "error_spike", WARNING, f"JavaScript error {fingerprint} spiked: {s.count} "
            f"(previous window {previous})",
            "Open the error's sampled rows for its message and stack; check the latest deploy.",
            evidence={"fingerprint": fingerprint, "count": s.count, "previous": previous},
            ms_lost=None, affected=s.count, how="error count; no time estimate",
            target={"error": fingerprint}))
    return findings


def regressions(window: Window) -> list[dict[str, Any]]:
    factor = 1 + float(settings.REGRESSION_THRESHOLD_PERCENT) / 100
    now = stats("request", window=window, group_by=("name", "dimension"))
    before = stats("request", window=window.previous(), group_by=("name", "dimension"))
    findings = []
    for key, s in now.items():
        old = before.get(key)
        if old is None or s.count < 20 or old.count < 20:
            continue
        p95, old_p95 = s.p95, old.p95
        if not p95 or not old_p95 or p95 <= old_p95 * factor or (s.mean or 0) <= (old.mean or 0):
            continue
        route, method = key
        findings.append(_finding(
            "regression", WARNING,
            f"{method} {route} regressed: p95 {old_p95:.0f} -> {p95:.0f} ms",
            "Compare with the previous period: new queries, a deploy, or more data.",
            evidence={"route": route, "method": method, "p95": p95, "previous_p95": old_p95,
                      "mean": s.mean, "previous_mean": old.mean, "count": s.count},
            ms_lost=((s.mean or 0) - (old.mean or 0)) * s.count, affected=s.count,
            how="(mean now - mean before) x requests now",
            target={"route": route, "method": method}))
    return findings


RULES: dict[str, Callable[[Window], list[dict[str, Any]]]] = {
    "n_plus_one": n_plus_one, "slow_query": slow_queries, "slow_route": slow_routes,
    "slow_api": slow_api_calls, "slow_render": slow_renders, "poor_vital": poor_vitals,
    "large_bundle": large_bundles, "error_rate": error_rates, "error_spike": error_spikes,
    "regression": regressions,
}


def _priority(finding: dict[str, Any]) -> tuple:
    ms = finding["impact"]["ms_lost"]
    return (ms is None, -(ms or 0.0), SEVERITY_RANK[finding["severity"]],
            -finding["impact"]["affected"], finding["title"])


def generate_insights(window: Window, limit: int = 20,
                      rules: list[str] | None = None) -> list[dict[str, Any]]:
    """Prioritized recommendations: biggest estimated time lost first."""
    findings: list[dict[str, Any]] = []
    for name, rule in RULES.items():
        if rules is not None and name not in rules:
            continue
        findings.extend(sorted(rule(window), key=_priority)[:MAX_PER_RULE])
    findings.sort(key=_priority)
    for rank, finding in enumerate(findings[:limit], start=1):
        finding["priority"] = rank
    return findings[:limit]
