"""One evaluation per (rule, minute) whoever races for it; acknowledgements that lose nothing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from perfmonitor.alerts import acknowledge as acknowledge_any
from perfmonitor.alerts.ack import AckConflict, acknowledge
from perfmonitor.alerts.engine import evaluate_rules
from perfmonitor.models import (
    AlertEvaluation,
    AlertNotification,
    AlertRule,
    PerformanceAlert,
)
from tests.alerts.helpers import fire, make_channel, make_rule, origin, write_minute


def _redis_queue_length(app: Any) -> int:
    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen(app.conf.task_default_queue)


@pytest.mark.django_db
def test_a_second_evaluation_of_the_same_minute_is_skipped():
    rule = make_rule(channels=[make_channel("ops")])
    at = fire(rule)
    again = evaluate_rules(at + timedelta(seconds=30), rules=[rule])  # same minute
    assert (again.evaluated, again.skipped) == (0, 1)
    assert AlertEvaluation.objects.filter(rule=rule).count() == 1
    assert AlertNotification.objects.count() == 1


@pytest.mark.django_db
def test_an_evaluation_older_than_the_last_one_changes_nothing():
    rule = make_rule()
    t = origin()
    write_minute("request", "/courses/", "GET", t, 2500)
    evaluate_rules(t + timedelta(minutes=5), rules=[rule])  # a late minute went first: no data
    evaluate_rules(t + timedelta(minutes=1), rules=[rule])  # a delayed task for an older minute
    claim = AlertEvaluation.objects.get(rule=rule, minute=t + timedelta(minutes=1))
    assert claim.error.startswith("superseded")
    assert not PerformanceAlert.objects.filter(rule=rule).exists()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_evaluators_claim_each_rule_and_minute_once(alert_celery):
    AlertRule.objects.filter(is_default=True).update(enabled=False)
    ops = make_channel("ops")
    rules = [make_rule(key=f"rule-{i}", name=f"Rule {i}", channels=[ops]) for i in range(12)]
    t = origin()
    write_minute("request", "/courses/", "GET", t, 2500)
    start = threading.Barrier(4)

    def evaluator(_: int) -> Any:
        start.wait()  # four beats' tasks at the same instant, each in its own transaction
        try:
            return evaluate_rules(t + timedelta(minutes=1, seconds=5))
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(evaluator, range(4)))

    assert sum(r.evaluated for r in reports) == 12
    assert sum(r.skipped for r in reports) == 36
    assert AlertEvaluation.objects.filter(rule__in=rules).count() == 12
    assert PerformanceAlert.objects.filter(rule__in=rules, state="firing").count() == 12
    assert AlertNotification.objects.count() == 12
    assert _redis_queue_length(alert_celery) == 12  # one delivery task per notification


@pytest.mark.django_db
def test_an_ack_stops_escalation_and_records_who_and_when():
    pager = make_channel("pager", "email", target="oncall@example.com")
    rule = make_rule(channels=[make_channel("ops")],
                     escalation=[{"after_seconds": 600, "channels": ["pager"]}])
    at = fire(rule)
    alert = PerformanceAlert.objects.get()
    assert alert.next_escalation_at == at + timedelta(minutes=10)
    alice = get_user_model().objects.create_user("alice")

    acked = acknowledge(alert.pk, alice, expected_version=alert.version, now=at)

    assert acked.acknowledged and acked.acknowledged_by == alice and acked.acknowledged_at == at
    assert acked.next_escalation_at is None and acked.version == alert.version + 1
    write_minute("request", "/courses/", "GET", at + timedelta(minutes=10), 2500)
    evaluate_rules(at + timedelta(minutes=11), rules=[rule])
    assert not AlertNotification.objects.filter(channel=pager).exists()


@pytest.mark.django_db
def test_an_ack_with_a_stale_version_or_a_second_ack_is_refused_with_the_reason():
    at = fire(make_rule())
    alert = PerformanceAlert.objects.get()
    alice = get_user_model().objects.create_user("alice")
    with pytest.raises(AckConflict, match="changed since you loaded it"):
        acknowledge(alert.pk, alice, expected_version=alert.version - 1, now=at)
    acknowledge(alert.pk, alice, now=at)
    with pytest.raises(AckConflict, match="Already acknowledged by alice"):
        acknowledge(alert.pk, alice, now=at)
    result = acknowledge_any(alert, alice)  # the dashboard's entry point never raises
    assert result.acknowledged is False and "Already acknowledged" in result.reason


@pytest.mark.django_db
def test_an_ack_racing_a_resolve_loses_nothing():
    rule = make_rule()
    at = fire(rule)
    seen = PerformanceAlert.objects.get()  # the on-call engineer loads the alert ...
    write_minute("request", "/courses/", "GET", at, 100)
    evaluate_rules(at + timedelta(minutes=1), rules=[rule])  # ... it resolves meanwhile ...
    with pytest.raises(AckConflict, match="Already resolved") as conflict:
        acknowledge(seen.pk, None, expected_version=seen.version)  # ... and the ack arrives
    assert conflict.value.alert.state == "resolved"

    at2 = fire(rule, at=at + timedelta(minutes=5))
    second = PerformanceAlert.objects.get(state="firing")
    acknowledge(second.pk, None, expected_version=second.version, now=at2)  # ack first ...
    write_minute("request", "/courses/", "GET", at2, 100)
    evaluate_rules(at2 + timedelta(minutes=1), rules=[rule])  # ... then the resolve
    second.refresh_from_db()
    assert second.state == "resolved" and second.acknowledged and second.acknowledged_at == at2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_acks_and_evaluations_never_overwrite_each_other(alert_celery):
    AlertRule.objects.filter(is_default=True).update(enabled=False)
    rule = make_rule(for_seconds=0)
    t = origin()
    for i in range(8):
        write_minute("request", "/courses/", "GET", t + timedelta(minutes=i), 2500)
    evaluate_rules(t + timedelta(minutes=1))
    alert = PerformanceAlert.objects.get(rule=rule)
    outcomes: list[str] = []

    def ack(_: int) -> None:
        try:
            acknowledge(alert.pk, None)
            outcomes.append("acked")
        except AckConflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    def evaluate(minute: int) -> None:
        try:
            evaluate_rules(t + timedelta(minutes=minute))
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(evaluate, m) for m in range(2, 8)]
        futures += [pool.submit(ack, n) for n in range(3)]
        for future in futures:
            future.result()

    alert.refresh_from_db()
    assert outcomes.count("acked") == 1 and outcomes.count("conflict") == 2
    assert alert.acknowledged and alert.state == "firing"
    assert alert.last_evaluated_at == t + timedelta(minutes=7)  # the newest minute won
    assert AlertEvaluation.objects.filter(rule=rule).count() == 7


@pytest.mark.django_db
def test_old_claims_and_settled_notifications_are_pruned_hourly():
    from perfmonitor.alerts.engine import prune_claims
    from perfmonitor.models import InAppNotification

    ops = make_channel("ops")
    at = fire(make_rule(channels=[ops]))
    AlertNotification.objects.update(status="delivered")
    InAppNotification.objects.create(idempotency_key="k", title="t", created_at=at)
    assert prune_claims(at + timedelta(days=1)) == 0
    assert prune_claims(at + timedelta(days=91)) == 3  # the claim, the notification, in-app
    assert PerformanceAlert.objects.count() == 1  # episodes are history: kept
