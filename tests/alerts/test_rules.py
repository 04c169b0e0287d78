"""Rule validation with clear errors, the five default rules, and the beat schedule."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django_celery_beat.models import PeriodicTask

from perfmonitor.models import AlertRule, NotificationChannel
from perfmonitor.schedule import ensure_periodic_tasks
from tests.alerts.helpers import make_channel

pytestmark = pytest.mark.django_db


def errors_of(**fields) -> dict[str, list[str]]:
    values = {"key": "r", "name": "R", "kind": "request", "aggregation": "p95",
              "warning_threshold": 100.0}
    values.update(fields)
    with pytest.raises(ValidationError) as caught:
        AlertRule(**values).full_clean()
    return caught.value.message_dict


def test_a_sensible_rule_is_valid():
    AlertRule(key="lcp-courses", name="LCP of /courses/", kind="vital", series_name="LCP",
              series_dimension="/courses/", aggregation="p75", window_seconds=600,
              warning_threshold=3000, for_seconds=600).full_clean()


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"kind": "requests"}, "kind", "Unknown series kind 'requests'"),
    ({"aggregation": "completion_rate"}, "aggregation", "does not apply to a rollup series"),
    ({"group_by": ["page"]}, "group_by", "page cannot group a request series"),
    ({"group_by": "route"}, "group_by", "must be a list"),
    ({"warning_threshold": None}, "warning_threshold", "Set a warning threshold"),
    ({"critical_threshold": 50.0}, "critical_threshold", "must not be below warning"),
    ({"operator": "<", "critical_threshold": 150.0}, "critical_threshold",
     "must not be above warning"),
    ({"resolve_threshold": 120.0}, "resolve_threshold", "must be at or below"),
    ({"window_seconds": 30}, "window_seconds", "between 60 seconds and 31 days"),
    ({"window_seconds": 90}, "window_seconds", "whole number of minutes"),
    ({"labels": {"severity": "x"}}, "labels", "set by perfmonitor"),
    ({"labels": {"bad-name": "x"}}, "labels", "not a valid label name"),
    ({"escalation": [{"after_seconds": 900, "channels": ["Nobody"]}]}, "escalation",
     "Unknown notification channel(s): Nobody"),
    ({"escalation": [{"after": 900}]}, "escalation", "must be"),
    ({"escalation_loops": 2}, "escalation_loops", "need at least one escalation level"),
    ({"threshold_mode": "baseline", "baseline_periods": 2}, "baseline_periods", "at least 3"),
    ({"source": "journey", "aggregation": "p95"}, "series_name", "journey type"),
    ({"source": "score", "aggregation": "overall", "group_by": ["route"]}, "group_by",
     "cannot be grouped"),
    ({"repeat_interval_seconds": 10}, "repeat_interval_seconds", "spam"),
])
def test_invalid_rules_name_the_field_and_the_problem(fields, field, words):
    errors = errors_of(**fields)
    assert field in errors, errors
    assert any(words in message for message in errors[field]), errors[field]


def test_escalation_to_existing_channels_is_valid():
    make_channel("On-call SMS", "sms", target="+4915112345678")
    AlertRule(key="r", name="R", kind="request", aggregation="p95", warning_threshold=1.0,
              escalation=[{"after_seconds": 900, "channels": ["On-call SMS"]}],
              escalation_loops=1).full_clean()


def test_channel_validation_names_the_problem():
    bad = [
        (NotificationChannel(name="a", type="slack", target="hooks.slack.com/x"), "target"),
        (NotificationChannel(name="b", type="email", target="not-an-address"), "target"),
        (NotificationChannel(name="c", type="sms", target="0151 123"), "target"),
        (NotificationChannel(name="d", type="webhook", target="https://x.example/h",
                             secret="whsec_!!!"), "secret"),
    ]
    for channel, field in bad:
        with pytest.raises(ValidationError) as caught:
            channel.full_clean()
        assert field in caught.value.message_dict, (channel.name, caught.value.message_dict)


def test_the_five_default_rules_are_installed_editable_and_notify_in_app():
    rules = {r.key: r for r in AlertRule.objects.filter(is_default=True)}
    assert set(rules) == {"api-response-time", "database-query-time", "lcp-poor", "error-rate",
                          "bundle-size"}
    assert rules["api-response-time"].warning_threshold == 2000
    assert rules["api-response-time"].aggregation == "p95"
    assert rules["database-query-time"].critical_threshold == 500
    assert rules["lcp-poor"].warning_threshold == 4000 and rules["lcp-poor"].group_by == ["page"]
    assert rules["error-rate"].critical_threshold == 5
    assert rules["bundle-size"].warning_threshold == 2 * 1024 * 1024
    for rule in rules.values():
        rule.full_clean()  # valid by the same rules as a hand-made one
        assert rule.enabled and [c.name for c in rule.channels.all()] == ["In-app"]


def test_the_data_migration_is_idempotent_and_keeps_edits():
    migration = importlib.import_module("perfmonitor.migrations.0003_default_alert_rules")
    AlertRule.objects.filter(key="api-response-time").update(warning_threshold=1500)
    migration.install(apps, None)
    migration.install(apps, None)
    assert AlertRule.objects.filter(is_default=True).count() == 5
    assert AlertRule.objects.get(key="api-response-time").warning_threshold == 1500


def test_the_evaluation_task_is_scheduled_every_minute_idempotently():
    PeriodicTask.objects.filter(task="perfmonitor.evaluate_alert_rules").delete()
    ensure_periodic_tasks()
    ensure_periodic_tasks()
    [task] = PeriodicTask.objects.filter(task="perfmonitor.evaluate_alert_rules")
    assert task.interval.every == 60 and task.interval.period == "seconds" and task.enabled
