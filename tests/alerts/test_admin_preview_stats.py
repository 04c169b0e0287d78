"""The admin story, preview over past data, and alert statistics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from perfmonitor.alerts import clock
from perfmonitor.alerts.preview import preview_rule
from perfmonitor.alerts.stats import alert_statistics
from perfmonitor.analytics.query import Window
from perfmonitor.models import (
    AlertEvaluation,
    AlertNotification,
    AlertRule,
    NotificationChannel,
    PerformanceAlert,
)
from tests.alerts.harness import Scenario, run_scenario
from tests.alerts.helpers import fire, make_channel, make_rule, origin, write_minute

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_the_admin_lists_rules_channels_silences_windows_alerts_and_deliveries(admin_client_):
    fire(make_rule(channels=[make_channel("ops")]))
    for model in ("alertrule", "notificationchannel", "silence", "maintenancewindow",
                  "performancealert", "alertnotification", "inappnotification"):
        response = admin_client_.get(f"/admin/perfmonitor/{model}/")
        assert response.status_code == 200, model
    page = admin_client_.get("/admin/perfmonitor/alertrule/").content.decode()
    assert "API response time" in page and "Slow courses" in page
    assert admin_client_.get("/admin/perfmonitor/alertrule/add/").status_code == 200


def test_adding_a_rule_in_the_admin_shows_validation_errors_next_to_the_fields(admin_client_):
    form = {"name": "LCP of courses", "key": "lcp-courses", "enabled": "on",
            "source": "series", "kind": "vital", "series_name": "LCP",
            "series_dimension": "/courses/", "aggregation": "p75", "window_seconds": "600",
            "group_by": "[]", "min_samples": "1", "operator": ">",
            "warning_threshold": "3000", "critical_threshold": "2000",
            "for_seconds": "600", "keep_firing_for_seconds": "0", "no_data_policy": "ok",
            "error_policy": "error", "labels": "{}", "threshold_mode": "static",
            "baseline_offset_seconds": "86400", "baseline_periods": "7",
            "send_resolved": "on", "escalation": "[]", "escalation_loops": "0"}
    response = admin_client_.post("/admin/perfmonitor/alertrule/add/", form)
    assert response.status_code == 200
    assert "must not be below warning" in response.content.decode()
    form["critical_threshold"] = "6000"
    response = admin_client_.post("/admin/perfmonitor/alertrule/add/", form)
    assert response.status_code == 302
    assert AlertRule.objects.get(key="lcp-courses").critical_threshold == 6000


def test_the_preview_page_shows_what_the_rule_would_have_done(admin_client_):
    t = clock.floor_minute(clock.now()) - timedelta(hours=2)
    for i in range(60):
        write_minute("request", "/courses/", "GET", t + timedelta(minutes=i),
                     3000 if 20 <= i < 30 else 400)
    rule = make_rule()
    page = admin_client_.get(f"/admin/perfmonitor/alertrule/{rule.pk}/preview/?hours=3")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Would have fired" in text and "Nothing was written" in text
    assert PerformanceAlert.objects.count() == 0


def test_the_acknowledge_action(admin_client_):
    fire(make_rule())
    alert = PerformanceAlert.objects.get()
    response = admin_client_.post("/admin/perfmonitor/performancealert/", {
        "action": "acknowledge_alerts", "_selected_action": [str(alert.pk)]}, follow=True)
    assert "1 alert(s) acknowledged." in response.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged and alert.acknowledged_by.username == "root"
    again = admin_client_.post("/admin/perfmonitor/performancealert/", {
        "action": "acknowledge_alerts", "_selected_action": [str(alert.pk)]}, follow=True)
    assert "Already acknowledged by root" in again.content.decode()


def test_a_webhook_channel_added_without_a_secret_gets_one(admin_client_):
    response = admin_client_.post("/admin/perfmonitor/notificationchannel/add/", {
        "name": "Incidents", "type": "webhook", "target": "https://incidents.example/hook",
        "secret": "", "settings": "{}", "enabled": "on"})
    assert response.status_code in (200, 302)
    # a blank secret fails validation unless ALERT_WEBHOOK_SECRET is set: the form says so
    if response.status_code == 200:
        assert "Webhooks are signed" in response.content.decode()
    page = admin_client_.get("/admin/perfmonitor/notificationchannel/add/").content.decode()
    assert "whsec_" in page  # the add form comes with a fresh secret
    secret = page.split('value="whsec_')[1].split('"')[0]
    response = admin_client_.post("/admin/perfmonitor/notificationchannel/add/", {
        "name": "Incidents", "type": "webhook", "target": "https://incidents.example/hook",
        "secret": f"whsec_{secret}", "settings": "{}", "enabled": "on"})
    assert response.status_code == 302
    assert NotificationChannel.objects.get(name="Incidents").secret == f"whsec_{secret}"


def test_preview_matches_what_the_engine_does_and_writes_nothing():
    scenario = Scenario(rule={"warning_threshold": 2000, "for_seconds": 120,
                              "keep_firing_for_seconds": 120, "resolve_threshold": 1500},
                        series={"/courses/": "500 2500x4 1800 1400x4 2500 500x5"},
                        expect=[])
    run = run_scenario(scenario)
    engine_states = [r.state for r in run.rows]
    rule = run.rule
    before = (PerformanceAlert.objects.count(), AlertEvaluation.objects.count(),
              AlertNotification.objects.count())

    preview = preview_rule(rule, run.start, run.start + timedelta(minutes=len(run.rows)))

    assert (PerformanceAlert.objects.count(), AlertEvaluation.objects.count(),
            AlertNotification.objects.count()) == before
    [series] = preview["series"]
    assert [p[2] for p in series["points"]] == engine_states
    assert preview["summary"]["fired"] == 1 and preview["summary"]["pending_only"] == 1
    assert preview["mode"] == "minute rollups"


def test_preview_of_a_dynamic_rule_runs_the_engine_per_step():
    t = origin()
    for day in range(1, 8):
        write_minute("request", "/courses/", "GET", t - timedelta(days=day), 1000 + day)
    write_minute("request", "/courses/", "GET", t, 5000)
    rule = make_rule(threshold_mode="baseline", baseline_periods=7, warning_threshold=3)
    preview = preview_rule(rule, t - timedelta(minutes=2), t + timedelta(minutes=3))
    assert preview["mode"] == "engine per step"
    assert preview["summary"]["fired"] == 1


def test_statistics_count_mtta_mttr_noisy_and_flapping_rules():
    t = origin()
    noisy = make_rule(key="noisy", name="Noisy")
    calm = make_rule(key="calm", name="Calm")
    user = get_user_model().objects.create_user("alice")

    def episode(rule, start_min, minutes, severity="warning", ack_after=None):
        fired = t + timedelta(minutes=start_min)
        PerformanceAlert.objects.create(
            rule=rule, alert_id=f"{rule.key}/{start_min}", alert_type=rule.key,
            severity=severity, message="m", timestamp=fired, fired_at=fired,
            fingerprint=f"{start_min}", state="resolved",
            resolved_at=fired + timedelta(minutes=minutes),
            acknowledged=ack_after is not None, acknowledged_by=user if ack_after else None,
            acknowledged_at=fired + timedelta(minutes=ack_after) if ack_after else None)

    for i in range(5):  # on and off every few minutes: flapping
        episode(noisy, i * 10, 3)
    episode(calm, 0, 60, severity="critical", ack_after=4)
    episode(calm, 100, 30, severity="critical", ack_after=2)

    stats = alert_statistics(Window(t - timedelta(minutes=1), t + timedelta(hours=3)))

    assert stats["fired"] == 7
    assert stats["by_severity"] == {"warning": 5, "critical": 2}
    assert stats["mtta_seconds"] == 180.0  # (4 + 2) / 2 minutes
    assert stats["mttr_seconds"] == pytest.approx((5 * 3 + 60 + 30) * 60 / 7, rel=1e-3)
    assert [r["name"] for r in stats["noisiest"]] == ["Noisy", "Calm"]
    assert [r["name"] for r in stats["flapping"]] == ["Noisy"]
    calm_row = next(r for r in stats["by_rule"] if r["name"] == "Calm")
    assert calm_row["mtta_seconds"] == 180.0 and calm_row["mttr_seconds"] == 45 * 60
