"""Each KPI against an industry reference, with a verdict.

References: Google's Core Web Vitals thresholds (web.dev, at p75), the Apdex
Alliance's rating bands, Lighthouse's score bands, and the common 1 % / 5 %
error-rate SLO levels (the 5 % is the original design's highErrorRate).
"""

from __future__ import annotations

from typing import Any

from perfmonitor.analytics import scores
from perfmonitor.analytics.assessment import assess_site
from perfmonitor.analytics.query import Window, total
from perfmonitor.analytics.vitals import VITALS, rate

APDEX_BANDS = ((0.94, "excellent"), (0.85, "good"), (0.70, "fair"), (0.50, "poor"),
               (0.0, "unacceptable"))
LIGHTHOUSE_BANDS = ((90, "good"), (50, "needs-improvement"), (0, "poor"))
ERROR_RATE_LEVELS = ((0.01, "good"), (0.05, "fair"))


def apdex_band(value: float) -> str:
    return next(label for floor, label in APDEX_BANDS if value >= floor)


def _vital(name: str, p75: float | None) -> dict[str, Any]:
    spec = VITALS[name]
    verdict = rate(name, p75) if p75 is not None else "no-data"
    return {"kpi": f"{name} p75", "value": p75, "unit": spec.unit,
            "reference": f"Google Core Web Vitals: good <= {spec.good:g}{spec.unit}, "
                         f"poor > {spec.poor:g}{spec.unit} (at p75)",
            "verdict": verdict, "meets_reference": verdict == "good" if p75 is not None else None}


def compare_with_industry(window: Window, analysis: dict[str, Any] | None = None,
                          vitals: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    analysis = analysis or scores.analyze_performance(window)
    vitals = vitals or assess_site(window)
    rows = [_vital(name, vitals["vitals"][name]["p75"])
            for name in ("LCP", "INP", "CLS", "FCP", "TTFB")]
    for key, label in (("server", "Server Apdex"), ("journeys", "Journey Apdex")):
        value = analysis["parts"][key]["score"]
        rows.append({"kpi": label, "value": value, "unit": "",
                     "reference": "Apdex bands: excellent >= 0.94, good >= 0.85, fair >= 0.70, "
                                  "poor >= 0.50",
                     "verdict": apdex_band(value) if value is not None else "no-data",
                     "meets_reference": value >= 0.85 if value is not None else None})
    requests = total("request", window=window)
    error_rate = requests.error_rate
    verdict = "no-data" if error_rate is None else next(
        (label for limit, label in ERROR_RATE_LEVELS if error_rate <= limit), "poor")
    rows.append({"kpi": "Server error rate", "value": error_rate, "unit": "ratio",
                 "reference": "common SLO levels: good <= 1 %, fair <= 5 %",
                 "verdict": verdict,
                 "meets_reference": error_rate <= 0.01 if error_rate is not None else None})
    score = analysis["score"]
    rows.append({"kpi": "Performance score", "value": score, "unit": "/100",
                 "reference": "Lighthouse bands: good >= 90, needs improvement >= 50",
                 "verdict": next(label for floor, label in LIGHTHOUSE_BANDS if score >= floor)
                 if score is not None else "no-data",
                 "meets_reference": score >= 90 if score is not None else None})
    return rows
