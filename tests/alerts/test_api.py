"""The alerting API as staff use it: rules, preview, acknowledge, silences, statistics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from perfmonitor.alerts import clock
from perfmonitor.models import AlertRule, PerformanceAlert, Silence
from tests.alerts.helpers import fire, make_channel, make_rule, origin, write_minute

pytestmark = pytest.mark.django_db
API = "/perfmonitor/api/v1/alerts"


def client_for(*perms: str, staff: bool = True) -> APIClient:
    user = get_user_model().objects.create_user(f"user{len(perms)}{staff}", is_staff=staff)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label,
                                                         codename=codename))
    client = APIClient()
    client.force_authenticate(user)
    return client


RULE = {"name": "LCP of courses", "kind": "vital", "series_name": "LCP",
        "series_dimension": "/courses/", "aggregation": "p75", "window_seconds": 600,
        "warning_threshold": 3000, "for_seconds": 600}


def test_rules_need_staff_with_model_permissions():
    assert APIClient().get(f"{API}/rules").status_code in (401, 403)
    assert client_for("perfmonitor.view_alertrule", staff=False).get(f"{API}/rules"). \
        status_code == 403
    assert client_for().get(f"{API}/rules").status_code == 403
    reader = client_for("perfmonitor.view_alertrule")
    listed = reader.get(f"{API}/rules")
    assert listed.status_code == 200 and len(listed.json()) == 5  # the defaults
    assert reader.post(f"{API}/rules", RULE, format="json").status_code == 403


def test_staff_create_edit_and_delete_a_rule():
    make_channel("Team Slack", "slack", target="https://hooks.slack.example/T1")
    admin = client_for("perfmonitor.view_alertrule", "perfmonitor.add_alertrule",
                       "perfmonitor.change_alertrule", "perfmonitor.delete_alertrule")
    created = admin.post(f"{API}/rules", {**RULE, "channels": ["Team Slack"]}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["key"] == "lcp-of-courses" and body["channels"] == ["Team Slack"]

    changed = admin.patch(f"{API}/rules/{body['id']}", {"warning_threshold": 3500},
                          format="json")
    assert changed.status_code == 200 and changed.json()["warning_threshold"] == 3500
    refused = admin.patch(f"{API}/rules/{body['id']}", {"critical_threshold": 1000},
                          format="json")
    assert refused.status_code == 400
    assert "must not be below warning" in refused.json()["critical_threshold"][0]
    assert admin.delete(f"{API}/rules/{body['id']}").status_code == 204
    assert not AlertRule.objects.filter(pk=body["id"]).exists()


def test_invalid_rules_get_a_400_naming_each_problem():
    admin = client_for("perfmonitor.view_alertrule", "perfmonitor.add_alertrule")
    response = admin.post(f"{API}/rules", {**RULE, "kind": "vitals", "group_by": ["nope"],
                                           "channels": ["Nobody"], "window_seconds": 10},
                          format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) >= {"channels"}  # the unknown channel is caught first by the field
    response = admin.post(f"{API}/rules", {**RULE, "kind": "vitals", "window_seconds": 10},
                          format="json")
    errors = response.json()
    assert "Unknown series kind 'vitals'" in errors["kind"][0]
    assert "between 60 seconds and 31 days" in errors["window_seconds"][0]


def test_preview_a_saved_and_an_unsaved_rule_without_writing_anything():
    t = clock.floor_minute(clock.now()) - timedelta(hours=3)
    for i in range(120):
        write_minute("request", "/courses/", "GET", t + timedelta(minutes=i),
                     3000 if 30 <= i < 60 else 500)
    rule = make_rule(for_seconds=300, window_seconds=300)
    reader = client_for("perfmonitor.view_alertrule")

    saved = reader.get(f"{API}/rules/{rule.pk}/preview?hours=4")
    assert saved.status_code == 200
    summary = saved.json()["summary"]
    assert summary["fired"] == 1 and summary["episodes"] == 1

    unsaved = reader.post(f"{API}/rules/preview", {**RULE, "kind": "request", "series_name": "",
                                                   "series_dimension": "",
                                                   "aggregation": "p95", "window_seconds": 60,
                                                   "warning_threshold": 2000,
                                                   "for_seconds": 0, "hours": 4},
                          format="json")
    assert unsaved.status_code == 200, unsaved.json()
    assert unsaved.json()["summary"]["fired"] == 1
    assert reader.get(f"{API}/rules/{rule.pk}/preview?hours=500").status_code == 400
    assert PerformanceAlert.objects.count() == 0


def test_acknowledge_is_compare_and_set():
    at = fire(make_rule())
    alert = PerformanceAlert.objects.get()
    staff = client_for("perfmonitor.view_dashboard")

    listed = staff.get(f"{API}?open=1").json()["alerts"]
    assert [a["state"] for a in listed] == ["firing"]
    stale = staff.post(f"{API}/{alert.pk}/acknowledge", {"version": alert.version + 7},
                       format="json")
    assert stale.status_code == 409 and "changed since you loaded it" in stale.json()["detail"]
    done = staff.post(f"{API}/{alert.pk}/acknowledge", {"version": alert.version},
                      format="json")
    assert done.status_code == 200 and done.json()["acknowledged"] is True
    assert done.json()["acknowledged_by"] == "user1True"
    again = staff.post(f"{API}/{alert.pk}/acknowledge", {}, format="json")
    assert again.status_code == 409 and again.json()["alert"]["acknowledged"] is True
    assert staff.post(f"{API}/{alert.pk}/acknowledge", {"version": "x"},
                      format="json").status_code == 400
    assert client_for().post(f"{API}/{alert.pk}/acknowledge").status_code == 403
    del at


def test_alert_list_rejects_bad_filters():
    staff = client_for("perfmonitor.view_dashboard")
    assert staff.get(f"{API}?state=burning").status_code == 400
    assert staff.get(f"{API}?limit=ten").status_code == 400
    assert staff.get(f"{API}/00000000-0000-7000-8000-000000000000").status_code == 404


def test_silences_are_created_listed_and_expired():
    staff = client_for("perfmonitor.view_silence", "perfmonitor.add_silence",
                       "perfmonitor.delete_silence")
    ends = (clock.now() + timedelta(hours=2)).isoformat()
    created = staff.post(f"{API}/silences", {
        "matchers": [{"label": "route", "op": "=~", "value": "/courses/.*"}],
        "ends_at": ends, "comment": "database migration"}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["active"] is True and created.json()["created_by"] == "user3True"
    bad = staff.post(f"{API}/silences", {"matchers": [{"label": "route", "op": "=~",
                                                       "value": "("}],
                                         "ends_at": ends, "comment": ""}, format="json")
    assert bad.status_code == 400
    assert "invalid regular expression" in bad.json()["matchers"][0]
    assert "Say why" in bad.json()["comment"][0]
    assert staff.delete(f"{API}/silences/{created.json()['id']}").status_code == 204
    silence = Silence.objects.get()
    assert silence.ends_at <= clock.now()  # expired, kept for the record


def test_statistics_over_a_window():
    rule = make_rule()
    t = origin()
    write_minute("request", "/courses/", "GET", t, 2500)
    fire(rule, at=t)
    staff = client_for("perfmonitor.view_dashboard")
    stats = staff.get(f"{API}/statistics?window=1d").json()
    assert stats["fired"] == 1 and stats["by_severity"] == {"warning": 1}
    assert stats["by_rule"][0]["name"] == "Slow courses"
    assert staff.get(f"{API}/statistics?window=forever").status_code == 400
