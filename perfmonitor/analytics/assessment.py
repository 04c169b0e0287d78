"""Core Web Vitals assessment per page and for the whole site (DESIGN §Web Vitals).

A page passes when p75 of LCP, INP and CLS are all good; with INP missing,
LCP and CLS decide; with LCP or CLS missing it is not assessable. Each vital
is reported at p75 with its good / needs-improvement / poor shares, read from
the rollup sketches (bucket resolution: a value within 1 % of a threshold may
land on either side of it).
"""

from __future__ import annotations

from typing import Any

from perfmonitor.analytics.query import SeriesStats, Window, prepare_sketches, stats
from perfmonitor.analytics.scores import vital_score
from perfmonitor.analytics.vitals import (
    CORE_WEB_VITALS,
    GOOD,
    NEEDS_IMPROVEMENT,
    POOR,
    VITALS,
    rate,
    vital_kind,
)

PASSED = "passed"
FAILED = "failed"
NOT_ASSESSABLE = "not-assessable"


def vital_summary(name: str, s: SeriesStats | None) -> dict[str, Any]:
    spec = VITALS[name]
    if s is None or not s.count:
        return {"name": name, "unit": spec.unit, "samples": 0, "p75": None, "rating": None,
                "score": None, "good": None, "needs_improvement": None, "poor": None}
    sketch = s.sketch
    n = sketch.count or 1
    good = min(sketch.count_at_most(spec.good), n)
    not_poor = min(sketch.count_at_most(spec.poor), n)
    p75 = s.p75
    return {
        "name": name, "unit": spec.unit, "samples": s.count, "p75": p75,
        "rating": rate(name, p75) if p75 is not None else None,
        "score": vital_score(name, p75) if spec.scored else None,
        "good": good / n, "needs_improvement": (not_poor - good) / n, "poor": (n - not_poor) / n,
        "thresholds": {"good": spec.good, "poor": spec.poor},
    }


def verdict(ratings: dict[str, str | None]) -> dict[str, Any]:
    """Pass / fail / not assessable from the p75 ratings of LCP, INP and CLS."""
    missing = [name for name in ("LCP", "CLS") if ratings.get(name) is None]
    if missing:
        return {"status": NOT_ASSESSABLE, "reason": f"no {' or '.join(missing)} data",
                "failing": []}
    decide = [name for name in CORE_WEB_VITALS if ratings.get(name) is not None]
    failing = [name for name in decide if ratings[name] != GOOD]
    reason = ("p75 of " + ", ".join(decide) + " good" if not failing
              else "p75 not good: " + ", ".join(f"{n} ({ratings[n]})" for n in failing))
    if ratings.get("INP") is None:
        reason += " (no INP data: LCP and CLS decide)"
    return {"status": FAILED if failing else PASSED, "reason": reason, "failing": failing}


def assess_pages(window: Window, page: str | None = None,
                 device: str | None = None) -> list[dict[str, Any]]:
    """Every page with vitals in the window: per-vital summary and the CWV verdict.

    ``device`` (mobile, tablet, desktop) narrows to the page loads of that device class.
    """
    grouped = stats(vital_kind(device), window=window, dimension=page,
                    group_by=("dimension", "name"))
    prepare_sketches(grouped.values())
    pages: dict[str, dict[str, SeriesStats]] = {}
    for (path, name), s in grouped.items():
        if name in VITALS:
            pages.setdefault(path, {})[name] = s
    result = []
    for path in sorted(pages):
        vitals = {name: vital_summary(name, pages[path].get(name)) for name in VITALS}
        assessment = verdict({name: vitals[name]["rating"] for name in CORE_WEB_VITALS})
        result.append({"page": path, "assessment": assessment, "vitals": vitals,
                       "samples": max(v["samples"] for v in vitals.values())})
    return result


def assess_site(window: Window, device: str | None = None) -> dict[str, Any]:
    """Site-wide p75 and shares per vital and the site's verdict (one device class or all)."""
    site = stats(vital_kind(device), window=window, name=list(VITALS), group_by=("name",))
    prepare_sketches(site.values())
    vitals = {name: vital_summary(name, site.get((name,))) for name in VITALS}
    assessment = verdict({name: vitals[name]["rating"] for name in CORE_WEB_VITALS})
    return {"assessment": assessment, "vitals": vitals}


def assessment(window: Window, page: str | None = None,
               device: str | None = None) -> dict[str, Any]:
    pages = assess_pages(window, page, device)
    tally = {PASSED: 0, FAILED: 0, NOT_ASSESSABLE: 0}
    for item in pages:
        tally[item["assessment"]["status"]] += 1
    return {"window": window.as_dict(), "site": assess_site(window, device), "pages": pages,
            "device": device or None,
            "page_tally": tally, "ratings": [GOOD, NEEDS_IMPROVEMENT, POOR]}
