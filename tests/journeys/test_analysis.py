"""The login funnel of one hour, built by hand, analysed; every number recomputed by hand.

Ten logins start in the window (target 10 s, so each of the 4 steps has a
2.5 s share). Step durations in ms, "-" = not reached:

====  ========  ==========  =====  =====  =========  ===========  =======================
#     form      credentials  auth   dash   ending     end-to-end   device
====  ========  ==========  =====  =====  =========  ===========  =======================
1     100       3000        -      1900   completed  5000         desktop (skipped auth)
2     200       4000        600    1200   completed  6000         desktop
3     300       6000        700    3000   completed  10000        desktop
4     100       9000        900    10000  completed  20000        mobile
5     100       20000       1000   29900  completed  51000        mobile
6     150       2500        -      -      failed     (invalid_password at authenticated)  mobile
7     250       3500        -      -      failed     (invalid_password at authenticated)  desktop
8     400       -           -      -      abandoned  (closed_tab)                         mobile
9     -         -           -      -      abandoned  (timeout)                            (none)
10    100       2000        -      -      in progress                                     desktop
====  ========  ==========  =====  =====  =========  ===========  =======================

One more login, completed in 8 s, started in the hour before (the trend's baseline).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from perfmonitor import journeys
from perfmonitor.analytics.query import Window
from tests.journeys.conftest import T0, at

pytestmark = pytest.mark.django_db

STEPS = ("form_view", "credentials_submitted", "authenticated", "dashboard_loaded")
DATA = [
    # (steps as (name, ms since previous), ending, reason, device)
    ([("form_view", 100), ("credentials_submitted", 3000), ("dashboard_loaded", 1900)],
     "completed", "", "desktop"),
    (list(zip(STEPS, (200, 4000, 600, 1200), strict=True)), "completed", "", "desktop"),
    (list(zip(STEPS, (300, 6000, 700, 3000), strict=True)), "completed", "", "desktop"),
    (list(zip(STEPS, (100, 9000, 900, 10000), strict=True)), "completed", "", "mobile"),
    (list(zip(STEPS, (100, 20000, 1000, 29900), strict=True)), "completed", "", "mobile"),
    ([("form_view", 150), ("credentials_submitted", 2500)], "failed", "invalid_password",
     "mobile"),
    ([("form_view", 250), ("credentials_submitted", 3500)], "failed", "invalid_password",
     "desktop"),
    ([("form_view", 400)], "abandoned", "closed_tab", "mobile"),
    ([], "abandoned", "timeout", None),
    ([("form_view", 100), ("credentials_submitted", 2000)], None, "", "desktop"),
]
WINDOW = Window(T0, T0 + timedelta(hours=1))


def record(begin_ms: float, steps: list[tuple[str, int]], ending: str | None, reason: str,
           device: str | None) -> str:
    metadata = {"device": device} if device else {}
    journey_id = journeys.start("login", metadata=metadata, at=at(begin_ms))
    clock = begin_ms
    for name, ms in steps:
        clock += ms
        journeys.step(journey_id, name, at=at(clock))
    if ending == "completed":
        journeys.complete(journey_id, at=at(clock))
    elif ending == "failed":
        journeys.fail(journey_id, "authenticated", reason, at=at(clock))
    elif ending == "abandoned":
        journeys.abandon(journey_id, reason, at=at(clock))
    return journey_id


@pytest.fixture
def logins() -> None:
    for n, (steps, ending, reason, device) in enumerate(DATA):
        record(n * 120_000, steps, ending, reason, device)
    baseline = list(zip(STEPS, (100, 5000, 900, 2000), strict=True))
    record(-30 * 60_000, baseline, "completed", "", "desktop")


def test_counts_rates_and_reasons(logins):
    report = journeys.analyze_journey("login", WINDOW)
    assert report["counts"] == {"started": 10, "ended": 9, "completed": 5, "failed": 2,
                                "abandoned": 2, "in_progress": 1}
    assert report["rates"] == pytest.approx({"completion_rate": 5 / 9,
                                             "abandonment_rate": 2 / 9, "failure_rate": 2 / 9})
    assert report["reasons"]["failed"] == [
        {"reason": "invalid_password", "count": 2, "share": 1.0}]
    assert sorted((r["reason"], r["count"]) for r in report["reasons"]["abandoned"]) == [
        ("closed_tab", 1), ("timeout", 1)]


def test_funnel_conversion_and_step_times_against_their_share_of_the_target(logins):
    funnel = journeys.analyze_journey("login", WINDOW)["funnel"]
    assert (funnel["ended"], funnel["completed"]) == (9, 5)
    table = [(s["name"], s["reached"], s["dropped"], round(s["overall_conversion"], 6),
              round(s["step_conversion"], 6)) for s in funnel["steps"]]
    assert table == [
        ("form_view", 8, 1, round(8 / 9, 6), round(8 / 9, 6)),
        ("credentials_submitted", 7, 1, round(7 / 9, 6), round(7 / 8, 6)),
        ("authenticated", 5, 2, round(5 / 9, 6), round(5 / 7, 6)),
        ("dashboard_loaded", 5, 0, round(5 / 9, 6), 1.0),
    ]
    times = {s["name"]: (s["timed"], s["median_ms"], s["p75_ms"], s["target_ms"],
                         round(s["over_target"], 6)) for s in funnel["steps"]}
    assert times == {
        # 100 100 100 150 200 250 300 400
        "form_view": (8, 175.0, 262.5, 2500.0, 0.105),
        # 2500 3000 3500 4000 6000 9000 20000
        "credentials_submitted": (7, 4000.0, 7500.0, 2500.0, 3.0),
        # 600 700 900 1000
        "authenticated": (4, 800.0, 925.0, 2500.0, 0.37),
        # 1200 1900 3000 10000 29900
        "dashboard_loaded": (5, 3000.0, 10000.0, 2500.0, 4.0),
    }


def test_end_to_end_time_bottleneck_critical_path_and_apdex(logins):
    report = journeys.analyze_journey("login", WINDOW)
    assert report["duration"] == {"count": 5, "median_ms": 10000.0, "p75_ms": 20000.0,
                                  "target_ms": 10000.0, "over_target": 2.0}
    bottleneck = report["bottleneck"]
    assert (bottleneck["step"], bottleneck["reason"], bottleneck["dropped"]) == (
        "authenticated", "conversion", 2)
    assert bottleneck["step_conversion"] == pytest.approx(5 / 7)

    path = report["critical_path"]
    assert [s["name"] for s in path["steps"]] == list(STEPS)  # 4 of the 5 completions
    assert (path["journeys"], path["share_of_completed"]) == (4, 0.8)
    assert [s["median_ms"] for s in path["steps"]] == [150.0, 7500.0, 800.0, 6500.0]
    assert path["median_total_ms"] == 14950.0
    assert path["critical_steps"] == ["credentials_submitted", "dashboard_loaded"]

    # T = 10 s: 3 satisfied (5, 6, 10 s), 1 tolerating (20 s), 5 frustrated (51 s, 2 failed,
    # 2 abandoned).
    assert report["apdex"] == {"score": pytest.approx(3.5 / 9), "t_ms": 10000.0,
                               "satisfied": 3, "tolerating": 1, "frustrated": 5}


def test_trend_against_the_previous_hour(logins):
    trend = journeys.analyze_journey("login", WINDOW)["trend"]
    assert trend["previous_window"]["end"] == T0.isoformat()
    assert trend["started"] == {"current": 10, "previous": 1, "change": 9}
    assert trend["completion_rate"] == pytest.approx(
        {"current": 5 / 9, "previous": 1.0, "change": 5 / 9 - 1})
    assert trend["p75_duration_ms"] == {"current": 20000.0, "previous": 8000.0,
                                        "change": 12000.0}
    assert trend["apdex"]["previous"] == 1.0


def test_breakdown_by_device(logins):
    breakdown = journeys.analyze_journey("login", WINDOW, breakdown_key="device")["breakdown"]
    assert breakdown["key"] == "device"
    rows = {v["value"]: v for v in breakdown["values"]}
    assert [v["value"] for v in breakdown["values"]] == ["desktop", "mobile", "(none)"]
    assert {k: rows["desktop"][k] for k in ("started", "ended", "completed")} == {
        "started": 5, "ended": 4, "completed": 3}
    assert rows["desktop"]["completion_rate"] == 0.75
    assert rows["desktop"]["p75_duration_ms"] == 8000.0  # 5000 6000 10000
    assert rows["desktop"]["apdex"] == 0.75
    assert (rows["mobile"]["completion_rate"], rows["mobile"]["p75_duration_ms"],
            rows["mobile"]["apdex"]) == (0.5, 43250.0, 0.125)  # 20000 51000
    assert (rows["(none)"]["started"], rows["(none)"]["completion_rate"]) == (1, 0.0)


def test_a_clean_funnel_names_the_slowest_step_over_its_share(db):
    for n in range(3):  # everyone completes; credentials take 6 s of a 2.5 s share
        record(n * 60_000, list(zip(STEPS, (100, 6000, 500, 400), strict=True)), "completed",
               "", "desktop")
    bottleneck = journeys.analyze_journey("login", WINDOW)["bottleneck"]
    assert (bottleneck["step"], bottleneck["reason"], bottleneck["over_target"]) == (
        "credentials_submitted", "slow", 2.4)


def test_a_large_window_is_read_as_a_bounded_sample(logins, settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "JOURNEY_ANALYSIS_MAX_ROWS": 4}
    report = journeys.analyze_journey("login", WINDOW)
    assert report["sample"] == {"rows": 4, "truncated": True}
    assert report["counts"]["started"] == 10  # counts stay exact


def test_an_unknown_type_or_a_bad_breakdown_key_is_a_clear_error(db):
    with pytest.raises(journeys.UnknownJourneyType):
        journeys.analyze_journey("checkout", WINDOW)
    with pytest.raises(journeys.JourneyError, match="Breakdown key"):
        journeys.analyze_journey("login", WINDOW, breakdown_key="device'; DROP")
