"""Scores at known points, Apdex on a hand-built set, and the Core Web Vitals verdicts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from perfmonitor.analytics.assessment import assessment, verdict
from perfmonitor.analytics.query import SeriesStats, Window
from perfmonitor.analytics.scores import (
    analyze_performance,
    apdex,
    apdex_counts,
    performance_score,
    server_part,
    vital_score,
)
from perfmonitor.analytics.sketch import QuantileSketch
from perfmonitor.analytics.vitals import VITALS


@pytest.mark.parametrize("name", ["LCP", "INP", "CLS", "FCP", "TTFB"])
def test_a_vital_at_its_good_threshold_scores_090_and_at_poor_050(name):
    spec = VITALS[name]
    assert vital_score(name, spec.good) == pytest.approx(0.90, abs=1e-6)
    assert vital_score(name, spec.poor) == pytest.approx(0.50, abs=1e-6)
    assert vital_score(name, spec.good / 4) > 0.99
    assert vital_score(name, spec.poor * 4) < 0.05
    assert vital_score(name, 0) == 1.0


def hand_built(durations: list[float], errors: int) -> SeriesStats:
    sketch = QuantileSketch()
    for d in durations:
        sketch.add(d)
    return SeriesStats(count=len(durations), sum=sum(durations), errors=errors,
                       min=min(durations), max=max(durations), sketch=sketch)


def test_apdex_on_a_hand_built_set():
    # T = 500 ms: 3 satisfied, 2 tolerating (<= 2 s), 2 frustrated, plus one fast error.
    s = hand_built([100, 200, 300, 1000, 1500, 2500, 3000, 120], errors=1)
    counts = apdex_counts(s, 500)
    assert counts == {"satisfied": 3, "tolerating": 2, "frustrated": 3, "total": 8}
    assert apdex(counts) == pytest.approx((3 + 2 / 2) / 8)


@pytest.mark.django_db
def test_server_apdex_uses_per_route_t_from_settings(write_values):
    now = timezone.now()
    write_values("request", "/slow-report/", [800.0] * 4, now - timedelta(minutes=3),
                 dimension="GET")
    window = Window.last(timedelta(hours=1))
    assert server_part(window)["score"] == pytest.approx(0.5)  # 800 ms: tolerating at T=500
    with override_settings(PERFMONITOR={"BACKGROUND_FLUSH": False,
                                        "APDEX_T_BY_ROUTE": {"/slow-report/": 1000}}):
        part = server_part(window)
        assert part["score"] == 1.0
        assert part["routes"][0]["t_ms"] == 1000


@pytest.mark.django_db
def test_overall_score_is_the_weighted_mean_and_says_how(write_values):
    at = timezone.now() - timedelta(minutes=5)
    write_values("vital", "LCP", [2500.0] * 10, at, dimension="/courses/")   # 0.90
    write_values("vital", "CLS", [0.25] * 10, at, dimension="/courses/")     # 0.50
    write_values("request", "/courses/", [100.0] * 9 + [5000.0], at, dimension="GET")
    window = Window.last(timedelta(hours=1))
    analysis = analyze_performance(window)
    frontend = analysis["parts"]["frontend"]
    assert frontend["score"] == pytest.approx((0.9 * 30 + 0.5 * 15) / 45, abs=0.01)
    assert analysis["parts"]["server"]["score"] == pytest.approx(0.9)
    expected = 100 * (frontend["score"] * 40 + 0.9 * 40) / 80
    assert analysis["score"] == pytest.approx(expected, abs=0.1)
    assert analysis["used"] == ["frontend", "server"]
    assert "erf" in frontend["how"] and "Apdex" in analysis["parts"]["server"]["how"]
    assert performance_score(window) == analysis["score"]


@pytest.mark.django_db
def test_no_data_means_no_score():
    assert performance_score(Window.last(timedelta(hours=1))) is None


def test_core_web_vitals_verdicts():
    assert verdict({"LCP": "good", "INP": "good", "CLS": "good"})["status"] == "passed"
    failed = verdict({"LCP": "poor", "INP": "good", "CLS": "good"})
    assert failed["status"] == "failed" and failed["failing"] == ["LCP"]
    assert verdict({"LCP": "good", "INP": None, "CLS": "good"})["status"] == "passed"
    assert verdict({"LCP": None, "INP": "good", "CLS": "good"})["status"] == "not-assessable"


@pytest.mark.django_db
def test_page_assessment_with_shares_from_rollups(write_values):
    at = timezone.now() - timedelta(minutes=2)
    write_values("vital", "LCP", [1000.0] * 6 + [3000.0] * 2 + [6000.0] * 2, at,
                 dimension="/slow/")
    write_values("vital", "CLS", [0.01] * 10, at, dimension="/slow/")
    write_values("vital", "LCP", [900.0] * 5, at, dimension="/fast/")
    write_values("vital", "CLS", [0.0] * 5, at, dimension="/fast/")
    write_values("vital", "INP", [80.0] * 5, at, dimension="/fast/")
    write_values("vital", "INP", [80.0] * 5, at, dimension="/no-lcp/")
    result = assessment(Window.last(timedelta(hours=1)))
    pages = {p["page"]: p for p in result["pages"]}
    slow = pages["/slow/"]
    assert slow["assessment"]["status"] == "failed"
    lcp = slow["vitals"]["LCP"]
    assert (lcp["good"], lcp["needs_improvement"], lcp["poor"]) == (0.6, 0.2, 0.2)
    assert lcp["rating"] == "needs-improvement"
    assert pages["/fast/"]["assessment"]["status"] == "passed"
    assert pages["/no-lcp/"]["assessment"]["status"] == "not-assessable"
    assert result["page_tally"] == {"passed": 1, "failed": 1, "not-assessable": 1}
    assert result["site"]["vitals"]["LCP"]["samples"] == 15
