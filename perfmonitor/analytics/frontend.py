"""Summaries per series for the read API: routes, SQL fingerprints, browser API calls,
JS errors and resource sizes — all from rollups."""

from __future__ import annotations

from typing import Any

from perfmonitor.analytics.query import SeriesStats, Window, change, prepare_sketches, stats, top
from perfmonitor.conf import settings
from perfmonitor.models import QueryFingerprint

RESOURCE_DIMENSIONS = ("js_transfer", "css_transfer", "js_decoded", "css_decoded",
                       "total_transfer")


def _row(labels: tuple[str, ...], key: tuple, s: SeriesStats, window: Window) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(labels, key, strict=False))
    row["total_time"] = s.sum
    row.update(s.as_dict(window))
    return row


def top_series(kind: str, window: Window, *, by: str = "total_time", limit: int = 20,
               name: str | None = None, labels: tuple[str, ...] = ("name", "dimension"),
               ) -> list[dict[str, Any]]:
    ranked = top(kind, window=window, by=by, limit=limit, name=name)
    prepare_sketches(r.stats for r in ranked)
    return [_row(labels, (r.name, r.dimension), r.stats, window) for r in ranked]


def top_queries(window: Window, *, by: str = "total_time", limit: int = 20,
                route: str | None = None) -> list[dict[str, Any]]:
    """Fingerprints across their origins (or for one route: ``route`` = "GET /x/")."""
    if route:
        ranked = top("query", window=window, by=by, limit=limit, dimension=route,
                     group_by=("name",))
    else:
        ranked = top("query", window=window, by=by, limit=limit, group_by=("name",))
    prepare_sketches(r.stats for r in ranked)
    sql = dict(QueryFingerprint.objects.filter(fingerprint__in=[r.name for r in ranked])
               .values_list("fingerprint", "sql"))
    slow = float(settings.SLOW_QUERY_MS)
    rows = []
    for r in ranked:
        row = _row(("fingerprint",), (r.name,), r.stats, window)
        row["sql"] = sql.get(r.name, "")
        row["slow"] = (row["p95"] or 0) > slow
        rows.append(row)
    return rows


def api_summary(window: Window, *, by: str = "total_time", limit: int = 20) -> dict[str, Any]:
    endpoints = top_series("api", window, by=by, limit=limit, labels=("endpoint", "method"))
    slow = float(settings.SLOW_API_MS)
    for row in endpoints:
        row["slow"] = (row["p95"] or 0) > slow
    overall = stats("api", window=window).get((), SeriesStats())
    return {"window": window.as_dict(), "overall": overall.as_dict(window),
            "endpoints": endpoints, "slow_threshold_ms": slow}


def error_summary(window: Window, *, limit: int = 20) -> dict[str, Any]:
    now = stats("error", window=window, group_by=("name", "dimension"))
    before = stats("error", window=window.previous(), group_by=("name",))
    by_fingerprint: dict[str, dict[str, Any]] = {}
    for (fingerprint, page), s in now.items():
        entry = by_fingerprint.setdefault(fingerprint, {"fingerprint": fingerprint, "count": 0,
                                                        "pages": {}})
        entry["count"] += s.count
        entry["pages"][page] = entry["pages"].get(page, 0) + s.count
    rows = sorted(by_fingerprint.values(), key=lambda e: (-e["count"], e["fingerprint"]))[:limit]
    for row in rows:
        previous = before.get((row["fingerprint"],), SeriesStats()).count
        row["previous"] = previous
        row["change"] = change(float(row["count"]), float(previous))
    total = sum(e["count"] for e in by_fingerprint.values())
    previous_total = sum(s.count for s in before.values())
    return {"window": window.as_dict(), "total": total, "previous_total": previous_total,
            "change": change(float(total), float(previous_total)), "errors": rows}


def resource_summary(window: Window, page: str | None = None) -> dict[str, Any]:
    grouped = stats("resource", window=window, name=page, group_by=("name", "dimension"))
    prepare_sketches(grouped.values())
    budget = float(settings.BUNDLE_SIZE_BYTES)
    pages: dict[str, dict[str, Any]] = {}
    for (path, dim), s in grouped.items():
        entry = pages.setdefault(path, {"page": path, "views": 0, "p75_bytes": {}})
        entry["views"] = max(entry["views"], s.count)
        entry["p75_bytes"][dim] = s.p75
    rows = []
    for entry in pages.values():
        sizes = entry["p75_bytes"]
        bundle = (sizes.get("js_transfer") or 0.0) + (sizes.get("css_transfer") or 0.0)
        entry["bundle_bytes"] = bundle
        entry["over_budget"] = bundle > budget
        rows.append(entry)
    rows.sort(key=lambda e: (-e["bundle_bytes"], e["page"]))
    memory = stats("memory", window=window, name=page, group_by=("name",))
    prepare_sketches(memory.values())
    return {"window": window.as_dict(), "budget_bytes": budget, "pages": rows,
            "memory": [{"page": key[0], "p75_bytes": s.p75, "max_bytes": s.max,
                        "samples": s.count} for key, s in sorted(memory.items())]}
