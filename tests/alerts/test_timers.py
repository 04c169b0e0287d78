"""Alert timers, minute by minute, with an injected clock (promtool-style tables).

Each table row: (minute, state after that minute's evaluation, notifications
delivered during that minute). See tests/alerts/harness.py for the notation.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from perfmonitor.alerts.ack import acknowledge
from perfmonitor.models import AlertNotification, MaintenanceWindow, Silence
from tests.alerts.harness import Run, Scenario, check

pytestmark = pytest.mark.django_db


def test_for_keeps_a_breach_pending_until_it_has_lasted_long_enough():
    check(Scenario(
        rule={"warning_threshold": 2000, "for_seconds": 120},
        series={"/courses/": "500 2500 2500 2500 2500 500"},
        expect=[
            (0, "inactive", []),
            (1, "pending", []),
            (2, "pending", []),
            (3, "firing", ["team:firing"]),  # 2 minutes after it started
            (4, "firing", []),
            (5, "resolved", ["team:resolved"]),
        ],
    ))


def test_a_breach_shorter_than_for_never_fires_or_notifies():
    check(Scenario(
        rule={"warning_threshold": 2000, "for_seconds": 180},
        series={"/courses/": "2500x3 500x2"},
        expect=[
            (0, "pending", []),
            (2, "pending", []),
            (3, "inactive", []),  # cleared while pending
            (4, "inactive", []),
        ],
    ))


def test_hysteresis_keeps_firing_until_the_value_is_below_the_resolve_threshold():
    check(Scenario(
        rule={"warning_threshold": 2000, "resolve_threshold": 1500},
        series={"/courses/": "2500 1800 1900 1600 1400 1800"},
        expect=[
            (0, "firing", ["team:firing"]),
            (1, "firing", []),  # below 2000 but above 1500: still firing
            (2, "firing", []),
            (3, "firing", []),
            (4, "resolved", ["team:resolved"]),
            (5, "inactive", []),  # 1800 does not start a new alert either
        ],
    ))


def test_keep_firing_for_holds_a_recovering_alert_and_refires_without_a_new_episode():
    run = check(Scenario(
        rule={"warning_threshold": 2000, "keep_firing_for_seconds": 180},
        series={"/courses/": "2500 500 500 2500 500 500 500 500"},
        expect=[
            (0, "firing", ["team:firing"]),
            (1, "recovering", []),
            (2, "recovering", []),
            (3, "firing", []),  # back within keep_firing_for: same episode, no new message
            (4, "recovering", []),
            (6, "recovering", []),
            (7, "resolved", ["team:resolved"]),  # clear for 3 minutes
        ],
    ))
    assert run.rule.alerts.count() == 1


def test_severity_rises_to_critical_and_notifies_once_more():
    check(Scenario(
        rule={"warning_threshold": 2000, "critical_threshold": 5000,
              "group_interval_seconds": 120},
        series={"/courses/": "2500 6000 6000 6000 2500"},
        expect=[
            (0, "firing", ["team:firing"]),
            (1, "firing", []),  # group_interval: not before 2 minutes after the first message
            (2, "firing", ["team:severity:critical"]),
            (3, "firing", []),
            (4, "firing", []),  # back to warning: nothing to say
        ],
    ))


def test_group_wait_holds_the_first_notification_and_drops_it_if_resolved_in_time():
    check(Scenario(
        rule={"warning_threshold": 2000, "group_wait_seconds": 90},
        series={"/courses/": "2500 500 500 2500 2500 2500 2500"},
        expect=[
            (0, "firing", []),
            (1, "resolved", []),  # resolved inside group_wait: nobody is told anything
            (3, "firing", []),
            (4, "firing", ["team:firing"]),  # 90 s after firing (which was at minute 3's end)
            (6, "firing", []),
        ],
    ))


def test_repeat_interval_renotifies_an_unchanged_alert():
    check(Scenario(
        rule={"warning_threshold": 2000, "repeat_interval_seconds": 180},
        series={"/courses/": "2500x8"},
        expect=[
            (0, "firing", ["team:firing"]),
            (1, "firing", []),
            (2, "firing", []),
            (3, "firing", ["team:repeat:1"]),
            (5, "firing", []),
            (6, "firing", ["team:repeat:2"]),
        ],
    ))


def _ack(run: Run) -> None:
    acknowledge(run.alert().pk, None, now=run.clock())


def test_escalation_levels_follow_their_delays_and_an_ack_stops_them():
    check(Scenario(
        channels={"team": "in_app", "oncall": "email", "manager": "email"},
        rule={"warning_threshold": 2000, "repeat_interval_seconds": 3600,
              "escalation": [{"after_seconds": 120, "channels": ["oncall"]},
                             {"after_seconds": 180, "channels": ["manager"]}]},
        series={"/courses/": "2500x10"},
        actions={6: _ack},
        expect=[
            (0, "firing", ["team:firing"]),
            (1, "firing", []),
            (2, "firing", ["oncall:escalation:0.1"]),  # 2 min unacknowledged
            (4, "firing", []),
            (5, "firing", ["manager:escalation:0.2"]),  # 3 min after level 1
            (6, "firing", []),
            (9, "firing", []),
        ],
    ))


def test_escalation_loops_run_the_levels_again_until_acknowledged():
    run = check(Scenario(
        channels={"team": "in_app", "oncall": "email"},
        rule={"warning_threshold": 2000, "escalation_loops": 2,
              "escalation": [{"after_seconds": 120, "channels": ["oncall"]}]},
        series={"/courses/": "2500x12"},
        actions={7: _ack},
        expect=[
            (0, "firing", ["team:firing"]),
            (2, "firing", ["oncall:escalation:0.1"]),
            (4, "firing", ["oncall:escalation:1.1"]),
            (6, "firing", ["oncall:escalation:2.1"]),
            (8, "firing", []),  # acked at 7 (and the loops were used up anyway)
        ],
    ))
    assert run.alert().acknowledged


def test_an_ack_before_the_escalation_is_due_means_no_escalation_and_no_repeats():
    check(Scenario(
        channels={"team": "in_app", "oncall": "email"},
        rule={"warning_threshold": 2000, "repeat_interval_seconds": 120,
              "escalation": [{"after_seconds": 180, "channels": ["oncall"]}]},
        series={"/courses/": "2500x8 500"},
        actions={1: _ack},
        expect=[
            (0, "firing", ["team:firing"]),
            (2, "firing", []),  # no repeat at 2
            (3, "firing", []),  # no escalation at 3
            (7, "firing", []),
            (8, "resolved", ["team:resolved"]),  # resolution is still announced
        ],
    ))


def _silence(label: str, value: str, minutes: int) -> callable:
    def action(run: Run) -> None:
        now = run.clock()
        Silence.objects.create(matchers=[{"label": label, "op": "=", "value": value}],
                               starts_at=now, ends_at=now + timedelta(minutes=minutes),
                               comment="planned migration")
    return action


def test_a_silence_mutes_notifications_and_an_alert_still_firing_notifies_when_it_ends():
    run = check(Scenario(
        rule={"warning_threshold": 2000},
        series={"/courses/": "2500x8"},
        actions={0: _silence("alertname", "Slow courses", minutes=4)},
        expect=[
            (0, "firing", []),
            (3, "firing", []),
            (4, "firing", ["team:firing"]),  # silence over, still firing
            (7, "firing", []),
        ],
    ))
    assert run.alert().silenced is False


def test_a_silence_that_starts_after_the_notification_does_not_hide_the_resolution():
    run = check(Scenario(
        rule={"warning_threshold": 2000, "repeat_interval_seconds": 120},
        series={"/courses/": "2500x4 500"},
        actions={1: _silence("rule", "test-rule", minutes=30)},
        expect=[
            (0, "firing", ["team:firing"]),
            (2, "firing", []),  # the repeat is muted
            (3, "firing", []),
            (4, "resolved", ["team:resolved"]),
        ],
    ))
    assert AlertNotification.objects.filter(event__startswith="repeat").count() == 0
    assert run.rule.alerts.get().silenced


def test_a_maintenance_window_mutes_matching_alerts():
    def open_window(run: Run) -> None:
        start = run.clock() - timedelta(minutes=1)
        MaintenanceWindow.objects.create(name="nightly deploy", start_time=start.time(),
                                         duration_minutes=4, timezone="UTC",
                                         matchers=[{"label": "route", "op": "=~",
                                                    "value": "/courses/.*"}])

    check(Scenario(
        rule={"warning_threshold": 2000, "group_by": ["route"]},
        series={"/courses/": "2500x6", "/login/": "_ 2500x5"},
        actions={0: open_window},
        expect=[
            (0, {"route=/courses/": "firing"}, []),
            (1, {"route=/courses/": "firing", "route=/login/": "firing"}, ["team:firing"]),
            (3, {"route=/courses/": "firing", "route=/login/": "firing"}, ["team:firing"]),
        ],
    ))


def test_no_data_ok_policy_resolves_when_the_series_stops():
    check(Scenario(
        rule={"warning_threshold": 2000, "no_data_policy": "ok"},
        series={"/courses/": "2500x2 _x3"},
        expect=[
            (0, "firing", ["team:firing"]),
            (2, "resolved", ["team:resolved"]),
            (4, "inactive", []),
        ],
    ))


def test_no_data_policy_no_data_opens_a_notified_no_data_alert():
    check(Scenario(
        rule={"warning_threshold": 2000, "no_data_policy": "no_data"},
        series={"/courses/": "500x2 _x2 500"},
        expect=[
            (0, "inactive", []),
            (2, "no_data", ["team:no_data"]),
            (3, "no_data", []),
            (4, "resolved", ["team:resolved"]),  # data back and fine
        ],
    ))


def test_no_data_keep_state_keeps_a_firing_alert_firing():
    check(Scenario(
        rule={"warning_threshold": 2000, "no_data_policy": "keep_state"},
        series={"/courses/": "2500 _x3 500"},
        expect=[
            (0, "firing", ["team:firing"]),
            (1, "firing", []),
            (3, "firing", []),
            (4, "resolved", ["team:resolved"]),
        ],
    ))


def test_no_data_alerting_treats_silence_as_a_breach():
    check(Scenario(
        rule={"warning_threshold": 2000, "no_data_policy": "alerting", "for_seconds": 60},
        series={"/courses/": "500 _x3 500"},
        expect=[
            (0, "inactive", []),
            (1, "pending", []),
            (2, "firing", ["team:firing"]),
            (4, "resolved", ["team:resolved"]),
        ],
    ))


def test_too_few_samples_count_as_no_data():
    check(Scenario(
        rule={"warning_threshold": 2000, "min_samples": 50, "no_data_policy": "no_data"},
        series={"/courses/": "2500x2"},
        samples=10,
        expect=[(0, "no_data", ["team:no_data"]), (1, "no_data", [])],
    ))


def test_group_by_gives_one_alert_per_route():
    run = check(Scenario(
        rule={"warning_threshold": 2000, "group_by": ["route"], "for_seconds": 60},
        series={"/courses/": "2500x4", "/login/": "500 2500x3", "/health/": "100x4"},
        expect=[
            (0, {"route=/courses/": "pending"}, []),
            (1, {"route=/courses/": "firing", "route=/login/": "pending"}, ["team:firing"]),
            (2, {"route=/courses/": "firing", "route=/login/": "firing"}, ["team:firing"]),
        ],
    ))
    routes = sorted(a.labels["route"] for a in run.rule.alerts.all())
    assert routes == ["/courses/", "/login/"]


def test_a_severity_rise_inside_group_wait_is_folded_into_the_first_message():
    run = check(Scenario(
        rule={"warning_threshold": 2000, "critical_threshold": 5000, "group_wait_seconds": 90},
        series={"/courses/": "2500 6000 6000"},
        expect=[
            (0, "firing", []),
            (1, "firing", ["team:firing"]),  # one message, no separate severity event
            (2, "firing", []),
        ],
    ))
    [note] = AlertNotification.objects.filter(alert__rule=run.rule)
    assert note.payload["title"].startswith("[FIRING:critical]")
