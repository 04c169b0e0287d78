"""Insights: the rules fire on the data that should trigger them, ranked by time lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from perfmonitor.analytics.insights import generate_insights
from perfmonitor.analytics.query import Window
from perfmonitor.models import PerformanceMetric, QueryFingerprint
from tests.testapp.models import Course, Lesson


@pytest.mark.django_db
def test_the_n_plus_one_page_is_the_top_recommendation(client, flush, write_values):
    for c in range(3):
        course = Course.objects.create(title=f"Course {c}")
        for i in range(8):
            Lesson.objects.create(course=course, title=f"Lesson {i}")
    for _ in range(3):
        assert client.get("/lessons/").status_code == 200
    flush()
    # Something else worth saying, with no time attached: it must rank below.
    write_values("vital", "CLS", [0.4] * 10, timezone.now() - timedelta(minutes=1),
                 dimension="/about/")

    insights = generate_insights(Window.last(timedelta(hours=1)))

    top = insights[0]
    assert top["rule"] == "n_plus_one" and top["priority"] == 1
    detail = PerformanceMetric.objects.filter(metric_type="query",
                                              metadata__n_plus_one=True).first()
    assert top["target"] == {"route": "/lessons/", "fingerprint": detail.metric_name}
    assert "testapp_course" in top["evidence"]["sql"]
    assert QueryFingerprint.objects.get(pk=detail.metric_name).sql == top["evidence"]["sql"]
    assert top["evidence"]["requests_affected"] == 3
    assert top["evidence"]["queries_per_request"] == 24
    assert top["impact"]["ms_lost"] > 0
    assert "/lessons/" in top["title"]
    assert any(i["rule"] == "poor_vital" for i in insights[1:])


@pytest.mark.django_db
def test_rules_fire_with_evidence_and_impact(write_values):
    now = timezone.now()
    at = now - timedelta(minutes=10)
    before = now - timedelta(hours=1, minutes=10)
    write_values("query", "abc123", [900.0] * 10 + [10.0] * 10, at, dimension="GET /r/")
    write_values("request", "/report/", [3000.0] * 10, at, dimension="GET")
    write_values("request", "/pay/", [100.0] * 18 + [100.0, 100.0], at, dimension="POST",
                 errors=[False] * 18 + [True, True])
    write_values("request", "/list/", [100.0] * 30, before, dimension="GET")
    write_values("request", "/list/", [400.0] * 30, at, dimension="GET")
    write_values("vital", "LCP", [5000.0] * 10, at, dimension="/server-slow/")
    write_values("vital", "TTFB", [2500.0] * 10, at, dimension="/server-slow/")
    write_values("vital", "LCP", [5000.0] * 10, at, dimension="/heavy-hero/")
    write_values("vital", "TTFB", [300.0] * 10, at, dimension="/heavy-hero/")
    write_values("resource", "/app/", [3 * 1024 * 1024] * 5, at, dimension="js_transfer")
    write_values("resource", "/app/", [100_000] * 5, at, dimension="css_transfer")
    write_values("error", "TypeError:x", [1.0] * 12, at, dimension="/app/")

    insights = generate_insights(Window.last(timedelta(hours=1)), limit=50)
    by_rule: dict[str, list[dict]] = {}
    for item in insights:
        by_rule.setdefault(item["rule"], []).append(item)

    slow_query = by_rule["slow_query"][0]
    assert slow_query["target"] == {"fingerprint": "abc123"}
    assert slow_query["impact"]["ms_lost"] == pytest.approx(10 * 400, rel=0.02)
    assert by_rule["slow_route"][0]["target"] == {"route": "/report/", "method": "GET"}
    assert by_rule["slow_route"][0]["impact"]["ms_lost"] == pytest.approx(10 * 1000, rel=0.02)
    assert by_rule["error_rate"][0]["evidence"]["error_rate"] == 0.1
    assert by_rule["regression"][0]["target"]["route"] == "/list/"
    causes = {i["target"]["page"]: i["evidence"]["likely_cause"] for i in by_rule["poor_vital"]
              if i["evidence"]["vital"] == "LCP"}
    assert causes["/server-slow/"].startswith("TTFB-heavy")
    assert causes["/heavy-hero/"].startswith("render delay")
    assert by_rule["large_bundle"][0]["target"] == {"page": "/app/"}
    assert by_rule["error_spike"][0]["evidence"]["count"] == 12
    ranked = [i["impact"]["ms_lost"] for i in insights if i["impact"]["ms_lost"] is not None]
    assert ranked == sorted(ranked, reverse=True)
    assert [i["priority"] for i in insights] == list(range(1, len(insights) + 1))


@pytest.mark.django_db
def test_quiet_site_has_no_insights(write_values):
    write_values("request", "/ok/", [50.0] * 20, timezone.now() - timedelta(minutes=3),
                 dimension="GET")
    assert generate_insights(Window.last(timedelta(hours=1))) == []
