"""Alert episodes for the dashboard's stories, made by the real alerting engine.

A rule like the default "Large JavaScript bundle" one (p75 of js_transfer per
page over an hour above the budget, ``for`` 0) fires as soon as a page ships a
bundle over budget: resource measurements go through the capture buffer, then
one evaluation run changes the alert state and publishes it. The rule is made
here because transactional tests flush the rows the data migration installed.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone

from perfmonitor.alerts.engine import evaluate_rules
from perfmonitor.capture import buffer
from perfmonitor.capture.records import Measurement
from perfmonitor.conf import settings
from perfmonitor.models import PerformanceAlert
from perfmonitor.models.alerts import AlertRule


def ship_a_large_bundle(page: str = "/courses/") -> None:
    size = settings.BUNDLE_SIZE_BYTES * 1.5
    buffer.push(Measurement("resource", page, size, time.time(), dimension="js_transfer"))
    buffer.flush_now()


def bundle_rule() -> AlertRule:
    rule, _ = AlertRule.objects.get_or_create(key="dashboard-bundle-budget", defaults={
        "name": "Dashboard story: bundle over budget", "source": "series", "kind": "resource",
        "series_dimension": "js_transfer", "aggregation": "p75", "group_by": ["page"],
        "window_seconds": 3600, "min_samples": 1, "operator": ">",
        "warning_threshold": float(settings.BUNDLE_SIZE_BYTES), "for_seconds": 0,
        "no_data_policy": "ok"})
    return rule


def change_an_alert_state(page: str = "/courses/", minutes_ahead: int = 1) -> PerformanceAlert:
    """A page ships a bundle over budget; the engine's run for the next minute fires it."""
    ship_a_large_bundle(page)
    return evaluate_bundle_rule(page, minutes_ahead)


def evaluate_bundle_rule(page: str, minutes_ahead: int = 1) -> PerformanceAlert:
    """One engine run; returns the page's firing episode."""
    rule = bundle_rule()
    # One evaluation per rule and minute: a second story in the same test uses a later minute.
    evaluate_rules(now=timezone.now() + timedelta(minutes=minutes_ahead), rules=[rule])
    return PerformanceAlert.objects.get(rule=rule, labels__page=page, state="firing")
