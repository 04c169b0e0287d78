"""Scores (DESIGN §Scores): per vital, front end, server Apdex, journey Apdex, overall.

Every score comes with how it was computed: its inputs, the formula and the
weights, so a number on the dashboard can always be explained.

* Per vital: Lighthouse's log-normal curve with p10 = the good threshold and
  median = the poor threshold, at p75 of the window. A vital at its good
  threshold scores 0.90, at its poor threshold 0.50.
* Front end: weighted mean of the vitals present (``VITAL_WEIGHTS``,
  renormalized over what is present). FID is never scored.
* Server: Apdex over requests, ``(satisfied + tolerating / 2) / total`` with
  T per route (``APDEX_T_BY_ROUTE``, else ``APDEX_T_MS``); errors are
  frustrated. Rollups keep one duration sketch per route, errors included, so
  errors are taken out of the satisfied bucket first: exact when errors are
  fast (the usual 500), a lower bound otherwise.
* Journeys: Apdex per journey type with T = its target; completed journeys by
  duration, abandoned and failed ones frustrated.
* Overall (0-100): ``SCORE_WEIGHTS`` mean of the parts present.
"""

from __future__ import annotations

import math
from typing import Any

from perfmonitor.analytics.query import SeriesStats, Window, prepare_sketches, stats
from perfmonitor.analytics.vitals import VITALS
from perfmonitor.conf import settings

LOG_NORMAL_FACTOR = 0.9061938  # erf^-1(0.8): puts p10 at score 0.9
VITAL_FORMULA = "(1 - erf(ln(p75 / poor) * 0.9061938 / ln(poor / good))) / 2"
APDEX_FORMULA = "(satisfied + tolerating / 2) / total"


def vital_score(name: str, value: float | None) -> float | None:
    """Score 0..1 of a vital's p75 on Lighthouse's log-normal curve."""
    if value is None:
        return None
    spec = VITALS[name]
    if value <= 0:
        return 1.0
    median, p10 = spec.poor, spec.good
    x = math.log(value / median) * LOG_NORMAL_FACTOR / math.log(median / p10)
    return min(1.0, max(0.0, (1 - math.erf(x)) / 2))


def apdex_counts(s: SeriesStats, t_ms: float) -> dict[str, float]:
    """Satisfied / tolerating / frustrated of one merged series (errors frustrated)."""
    n = s.count
    if not n:
        return {"satisfied": 0.0, "tolerating": 0.0, "frustrated": 0.0, "total": 0}
    sketch = s.sketch
    within_t = min(sketch.count_at_most(t_ms), n)
    within_4t = min(sketch.count_at_most(4 * t_ms), n)
    errors = min(s.errors, n)
    satisfied = max(0.0, within_t - errors)
    left = max(0.0, errors - within_t)
    tolerating = max(0.0, within_4t - within_t - left)
    return {"satisfied": satisfied, "tolerating": tolerating,
            "frustrated": n - satisfied - tolerating, "total": n}


def apdex(counts: dict[str, float]) -> float | None:
    if not counts["total"]:
        return None
    return (counts["satisfied"] + counts["tolerating"] / 2) / counts["total"]


def apdex_t_for(route: str) -> float:
    return float(settings.APDEX_T_BY_ROUTE.get(route, settings.APDEX_T_MS))


# -- parts --------------------------------------------------------------------------------


def frontend_part(window: Window) -> dict[str, Any]:
    site = stats("vital", window=window, name=[n for n, s in VITALS.items() if s.scored],
                 group_by=("name",))
    prepare_sketches(site.values())
    weights = settings.VITAL_WEIGHTS
    vitals: list[dict[str, Any]] = []
    for name, spec in VITALS.items():
        if not spec.scored:
            continue
        s = site.get((name,))
        p75 = s.p75 if s is not None and s.count else None
        vitals.append({"name": name, "p75": p75, "unit": spec.unit, "samples": s.count if s else 0,
                       "good": spec.good, "poor": spec.poor,
                       "score": vital_score(name, p75), "weight": float(weights.get(name, 0))})
    present = [v for v in vitals if v["score"] is not None and v["weight"] > 0]
    weight_sum = sum(v["weight"] for v in present)
    score = sum(v["score"] * v["weight"] for v in present) / weight_sum if weight_sum else None
    return {"score": score, "vitals": vitals,
            "how": f"per vital at p75: {VITAL_FORMULA}; weighted mean over the vitals present "
                   f"(weights {dict(weights)}, renormalized to {weight_sum:g})"}


def server_part(window: Window, routes: dict[tuple, SeriesStats] | None = None,
                ) -> dict[str, Any]:
    """Apdex over requests; ``routes`` ({(route,): stats}) when the caller has them."""
    if routes is None:
        routes = stats("request", window=window, group_by=("name",))
    prepare_sketches(routes.values())
    rows = []
    totals = {"satisfied": 0.0, "tolerating": 0.0, "frustrated": 0.0, "total": 0}
    for (route,), s in routes.items():
        t_ms = apdex_t_for(route)
        counts = apdex_counts(s, t_ms)
        for key in totals:
            totals[key] += counts[key]
        rows.append({"route": route, "t_ms": t_ms, "apdex": apdex(counts), **counts})
    rows.sort(key=lambda r: (-(r["total"] - r["satisfied"]), r["route"]))
    return {"score": apdex(totals), **totals, "routes": rows,
            "how": f"Apdex {APDEX_FORMULA} over all requests; satisfied <= T, tolerating <= 4T, "
                   f"errors frustrated; T = {settings.APDEX_T_MS:g} ms unless APDEX_T_BY_ROUTE "
                   f"sets one"}


def journey_targets() -> dict[str, float] | None:
    """Journey type -> target ms, or None when the journeys package is absent."""
    try:
        from perfmonitor.journeys.definitions import journey_types
    except ImportError:
        return None
    try:
        return {key: float(d.target_ms) for key, d in journey_types().items()}
    except Exception:  # a broken JOURNEY_TYPES setting is reported by its system check
        return None


def journeys_part(window: Window) -> dict[str, Any]:
    targets = journey_targets()
    if targets is None:
        return {"score": None, "journeys": [], "how": "journeys package not installed"}
    grouped = stats("journey", window=window, dimension=("completed", "abandoned", "failed"),
                    group_by=("name", "dimension"))
    prepare_sketches(grouped.values())
    rows = []
    totals = {"satisfied": 0.0, "tolerating": 0.0, "frustrated": 0.0, "total": 0}
    for journey_type, target in sorted(targets.items()):
        done = grouped.get((journey_type, "completed"), SeriesStats())
        others = sum(grouped.get((journey_type, d), SeriesStats()).count
                     for d in ("abandoned", "failed"))
        if not done.count and not others:
            continue
        within_t = min(done.sketch.count_at_most(target), done.count) if done.count else 0.0
        within_4t = min(done.sketch.count_at_most(4 * target), done.count) if done.count else 0.0
        counts = {"satisfied": within_t, "tolerating": within_4t - within_t,
                  "frustrated": done.count - within_4t + others, "total": done.count + others}
        for key in totals:
            totals[key] += counts[key]
        rows.append({"journey": journey_type, "t_ms": target, "apdex": apdex(counts),
                     "completed": done.count, "abandoned_or_failed": others, **counts})
    return {"score": apdex(totals), **totals, "journeys": rows,
            "how": f"journey Apdex {APDEX_FORMULA} with T = the journey's target; completed "
                   f"journeys by duration, abandoned and failed ones frustrated"}


# -- overall -------------------------------------------------------------------------------


def analyze_performance(window: Window, routes: dict[tuple, SeriesStats] | None = None,
                        ) -> dict[str, Any]:
    """The structured analysis behind the score: parts, weights, inputs, formulas."""
    parts = {"frontend": frontend_part(window), "server": server_part(window, routes),
             "journeys": journeys_part(window)}
    weights = settings.SCORE_WEIGHTS
    present = {k: p["score"] for k, p in parts.items()
               if p["score"] is not None and float(weights.get(k, 0)) > 0}
    weight_sum = sum(float(weights[k]) for k in present)
    overall = (100 * sum(score * float(weights[k]) for k, score in present.items()) / weight_sum
               if weight_sum else None)
    low = settings.LOW_PERFORMANCE_SCORE
    return {
        "window": window.as_dict(),
        "score": round(overall, 1) if overall is not None else None,
        "low": overall is not None and overall < low,
        "low_threshold": low,
        "parts": parts,
        "weights": {k: float(weights.get(k, 0)) for k in parts},
        "used": sorted(present),
        "how": f"100 x weighted mean of the parts present ({', '.join(sorted(present)) or 'none'})"
               f" with weights {dict(weights)}",
    }


def performance_score(window: Window) -> float | None:
    """The overall performance score, 0-100 (None without any data)."""
    return analyze_performance(window)["score"]
