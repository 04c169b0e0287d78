"""What a rule reads: any rollup series or derived metric, per label set, and dynamic thresholds."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest

from perfmonitor.alerts.engine import evaluate_rules
from perfmonitor.alerts.metrics import MetricReader, observe
from perfmonitor.analytics.compaction import compact_rollups
from perfmonitor.models import AlertRule, PerformanceAlert
from tests.alerts.helpers import make_rule, origin, write_minute

pytestmark = pytest.mark.django_db


def values(rule: AlertRule, minute) -> dict:
    return {dict(labels).get("route", dict(labels).get("page", "")): round(obs.value, 1)
            if obs.value is not None else obs.status
            for labels, obs in observe(rule, MetricReader(), minute).items()}


def test_a_route_group_glob_selects_its_routes_and_group_by_splits_them():
    t = origin()
    for route, ms in (("/api/courses/", 900), ("/api/bookings/", 2500), ("/courses/", 5000)):
        write_minute("request", route, "GET", t, ms)
    grouped = make_rule(series_name="/api/*", group_by=["route"])
    assert values(grouped, t + timedelta(minutes=1)) == {"/api/courses/": pytest.approx(900, 0.02),
                                                         "/api/bookings/": pytest.approx(2500,
                                                                                         0.02)}
    merged = make_rule(key="all-api", name="All API", series_name="/api/*")
    [(labels, obs)] = observe(merged, MetricReader(), t + timedelta(minutes=1)).items()
    assert labels == () and obs.count == 60 and obs.value == pytest.approx(2500, rel=0.02)


def test_error_rate_is_a_percentage_and_rate_is_per_minute():
    t = origin()
    write_minute("request", "/pay/", "POST", t, 200, count=40, errors=4)
    write_minute("request", "/pay/", "POST", t + timedelta(minutes=1), 200, count=60, errors=1)
    errors = make_rule(aggregation="error_rate", window_seconds=120, warning_threshold=4)
    [(_, obs)] = observe(errors, MetricReader(), t + timedelta(minutes=2)).items()
    assert obs.value == pytest.approx(5.0) and obs.thresholds.severity(obs.value) == "warning"
    rate = make_rule(key="rate", name="Rate", aggregation="rate", window_seconds=120,
                     warning_threshold=1000)
    [(_, obs)] = observe(rate, MetricReader(), t + timedelta(minutes=2)).items()
    assert obs.value == pytest.approx(50.0)


def test_vitals_are_read_per_page_at_p75():
    t = origin()
    write_minute("vital", "LCP", "/courses/", t, 4500, count=30)
    write_minute("vital", "LCP", "/courses/", t, 1000, count=10)
    write_minute("vital", "LCP", "/login/", t, 1200)
    write_minute("vital", "CLS", "/courses/", t, 0.5)
    rule = make_rule(kind="vital", series_name="LCP", aggregation="p75", group_by=["page"],
                     warning_threshold=4000)
    assert values(rule, t + timedelta(minutes=1)) == {"/courses/": pytest.approx(4500, 0.02),
                                                      "/login/": pytest.approx(1200, 0.02)}


def test_a_vital_rule_can_watch_one_device_class():
    t = origin()
    write_minute("vital", "LCP", "/courses/", t, 2000, count=40)  # every device
    write_minute("vital:mobile", "LCP", "/courses/", t, 4800, count=10)  # phones only
    write_minute("vital:desktop", "LCP", "/courses/", t, 1500, count=30)
    phones = make_rule(kind="vital:mobile", series_name="LCP", aggregation="p75",
                       group_by=["page"], warning_threshold=4000)
    phones.full_clean()
    assert values(phones, t + timedelta(minutes=1)) == {"/courses/": pytest.approx(4800, 0.02)}


def test_bundle_size_reads_the_js_transfer_of_each_page():
    t = origin()
    write_minute("resource", "/courses/", "js_transfer", t, 3 * 1024 * 1024, count=5)
    write_minute("resource", "/courses/", "total_transfer", t, 9 * 1024 * 1024, count=5)
    rule = AlertRule.objects.get(key="bundle-size")
    evaluate_rules(t + timedelta(minutes=1), rules=[rule])
    alert = PerformanceAlert.objects.get(rule=rule)
    assert alert.state == "firing" and alert.labels["page"] == "/courses/"
    assert "3.00 MB" in alert.message


def test_hour_rows_built_by_compaction_give_the_same_value_as_minute_rows():
    t = origin()
    for i in range(180):
        write_minute("request", "/courses/", "GET", t + timedelta(minutes=i), 100 + i * 10)
    rule = make_rule(window_seconds=3 * 3600, aggregation="p95")
    before = observe(rule, MetricReader(), t + timedelta(hours=3))[()].value
    compact_rollups()
    after = observe(rule, MetricReader(), t + timedelta(hours=3))[()].value
    assert after == pytest.approx(before, rel=0.02)


def test_score_rules_read_the_performance_score():
    t = origin()
    for name, value in (("LCP", 1500), ("INP", 100), ("CLS", 0.05)):
        write_minute("vital", name, "/courses/", t, value)
    rule = make_rule(source="score", kind="", aggregation="overall", operator="<",
                     warning_threshold=70)
    [(labels, obs)] = observe(rule, MetricReader(), t + timedelta(minutes=1)).items()
    assert labels == () and 90 <= obs.value <= 100
    front = make_rule(key="front", name="Front", source="score", kind="", operator="<",
                      aggregation="frontend", warning_threshold=70)
    assert observe(front, MetricReader(), t + timedelta(minutes=1))[()].value > 90


def test_journey_rules_read_completion_rates_in_percent():
    t = origin()
    write_minute("journey", "login", "completed", t, 3000, count=30)
    write_minute("journey", "login", "abandoned", t, 9000, count=10)
    rule = make_rule(source="journey", kind="", series_name="login",
                     aggregation="completion_rate", operator="<", warning_threshold=80)
    [(_, obs)] = observe(rule, MetricReader(), t + timedelta(minutes=1)).items()
    assert obs.value == pytest.approx(75.0)
    assert obs.thresholds.severity(obs.value) == "warning"


def test_a_metric_that_cannot_be_evaluated_puts_the_rule_in_the_error_state(monkeypatch):
    t = origin()
    unknown = make_rule(source="journey", kind="", series_name="teleportation",
                        aggregation="completion_rate", operator="<", warning_threshold=80)
    evaluate_rules(t, rules=[unknown])
    alert = PerformanceAlert.objects.get(rule=unknown)
    assert alert.state == "error" and "teleportation" in alert.message

    monkeypatch.setitem(sys.modules, "perfmonitor.analytics.scores", None)  # not installed
    score = make_rule(key="score", name="Score", source="score", kind="",
                      aggregation="overall", operator="<", warning_threshold=70)
    evaluate_rules(t, rules=[score])
    alert = PerformanceAlert.objects.get(rule=score)
    assert alert.state == "error"
    assert alert.message.startswith("The performance score is not available yet")


def test_percent_change_against_the_same_window_yesterday():
    t = origin()
    write_minute("request", "/courses/", "GET", t - timedelta(days=1), 1000)
    write_minute("request", "/courses/", "GET", t, 1600)
    write_minute("request", "/login/", "GET", t - timedelta(days=1), 1000)
    write_minute("request", "/login/", "GET", t, 1200)
    write_minute("request", "/new/", "GET", t, 9000)
    rule = make_rule(threshold_mode="percent_change", baseline_offset_seconds=86400,
                     warning_threshold=50, group_by=["route"])
    observed = {dict(k)["route"]: o for k, o in
                observe(rule, MetricReader(), t + timedelta(minutes=1)).items()}
    assert observed["/courses/"].thresholds.warning == pytest.approx(1500, rel=0.02)
    assert observed["/courses/"].thresholds.severity(observed["/courses/"].value) == "warning"
    assert observed["/login/"].thresholds.severity(observed["/login/"].value) is None
    assert observed["/new/"].status == "no_data"  # nothing yesterday to compare with


def test_a_robust_baseline_flags_an_outlier_but_not_normal_variation():
    t = origin()
    for day, ms in enumerate((1000, 1040, 980, 1010, 5000, 990, 1020), start=1):  # one bad day
        write_minute("request", "/courses/", "GET", t - timedelta(days=day), ms)
    rule = make_rule(threshold_mode="baseline", baseline_offset_seconds=86400,
                     baseline_periods=7, warning_threshold=3, critical_threshold=6)
    write_minute("request", "/courses/", "GET", t, 1060)
    normal = observe(rule, MetricReader(), t + timedelta(minutes=1))[()]
    assert normal.context["median"] == pytest.approx(1010, rel=0.02)
    assert normal.thresholds.severity(normal.value) is None  # the 5 s day did not skew it
    write_minute("request", "/courses/", "GET", t + timedelta(minutes=1), 1500)
    outlier = observe(rule, MetricReader(), t + timedelta(minutes=2))
    # the window at t+2 holds only the 1500 ms minute; its baseline is the same minute on
    # earlier days, which had no data
    assert outlier[()].status == "no_data"
    spike = observe(make_rule(key="b2", name="B2", threshold_mode="baseline",
                              baseline_periods=7, warning_threshold=3, window_seconds=120),
                    MetricReader(), t + timedelta(minutes=2))[()]
    assert spike.thresholds.severity(spike.value) == "warning"
