"""End to end with a real Celery worker (subprocess), Redis (database 6) and PostgreSQL.

The worker evaluates the rules and delivers the notifications; a local HTTP
server stands in for Slack, a webhook receiver and an SMS provider, verifies
every webhook signature and deduplicates by idempotency key, like a careful
receiver would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from perfmonitor import tasks
from perfmonitor.alerts import clock
from perfmonitor.models import (
    AlertEvaluation,
    AlertNotification,
    AlertRule,
    InAppNotification,
    NotificationDelivery,
    PerformanceAlert,
)
from tests.alerts.helpers import make_channel, make_rule, write_minute
from tests.alerts.receiver import Receiver, start_receiver
from tests.alerts.worker import Worker

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow,
              pytest.mark.django_db(transaction=True, serialized_rollback=True)]

OVERRIDES = {"ALERT_NOTIFY_BACKOFF_SECONDS": 0.3, "ALERT_NOTIFY_BACKOFF_MAX": 1.0,
             "ALERT_NOTIFY_TIMEOUT": 1.5, "ALERT_SELF_ALERT_FAILURES": 50}


@pytest.fixture(scope="module")
def shared_receiver(webhook_secret: str) -> Iterator[Receiver]:
    found, server = start_receiver(webhook_secret)
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver(shared_receiver: Receiver) -> Receiver:
    shared_receiver.reset()
    return shared_receiver


@pytest.fixture(scope="module")
def worker(alert_celery: Any, shared_receiver: Receiver, django_db_setup: None,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker for the module (starting one costs seconds); the kill test restarts it."""
    overrides = {**OVERRIDES, "ALERT_SMS_API_URL": shared_receiver.url("/sms")}
    log = tmp_path_factory.mktemp("worker") / "celery"
    started = Worker(alert_celery.conf.task_default_queue, overrides, Path(log))
    started.start()
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def quiet_defaults() -> None:
    AlertRule.objects.filter(is_default=True).update(enabled=False)


def wait_until(condition: Callable[[], bool], timeout: float = 25.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def tick(at) -> None:
    """What beat sends every minute, for the minute of ``at``."""
    tasks.evaluate_alert_rules.apply_async(kwargs={"at": at.isoformat()})


def settled() -> bool:
    return not AlertNotification.objects.filter(status__in=["pending", "sending"]).exists()


def test_a_breach_notifies_every_channel_once_and_its_resolution_once(worker, receiver,
                                                                      webhook_secret):
    slack = make_channel("slack", "slack", target=receiver.url("/slack"))
    hook = make_channel("hooks", "webhook", target=receiver.url("/webhook"),
                        secret=webhook_secret)
    sms = make_channel("pager", "sms", target="+4915112345678")
    app = make_channel("ops")
    rule = make_rule(channels=[slack, hook, sms, app], group_interval_seconds=0)
    minute = clock.floor_minute(timezone.now()) - timedelta(minutes=30)
    write_minute("request", "/courses/", "GET", minute, 3000)  # breach
    write_minute("request", "/courses/", "GET", minute + timedelta(minutes=1), 300)  # fine

    tick(minute + timedelta(minutes=1))
    tick(minute + timedelta(minutes=1))  # a second beat, same minute
    wait_until(lambda: AlertNotification.objects.filter(status="delivered").count() == 4,
               what="four firing notifications delivered")
    alert = PerformanceAlert.objects.get(rule=rule)
    assert alert.state == "firing"

    tick(minute + timedelta(minutes=2))
    wait_until(lambda: AlertNotification.objects.filter(status="delivered").count() == 8,
               what="four resolved notifications delivered")
    time.sleep(0.5)  # nothing else is on its way
    assert settled()

    for path in ("/slack", "/webhook", "/sms"):
        statuses = [r.json.get("status", "firing" if "FIRING" in str(r.json) else "resolved")
                    for r in receiver.delivered(path)]
        assert len(statuses) == 2, (path, statuses)
        assert len(receiver.all(path)) == 2  # no retries, no duplicates
    assert [r.json["status"] for r in receiver.all("/webhook")] == ["firing", "resolved"]
    assert all(r.signature_ok for r in receiver.all("/webhook"))
    assert [r.json["text"].split("]")[0] for r in receiver.all("/slack")] == \
        ["[FIRING:warning", "[RESOLVED:warning"]
    assert sorted(InAppNotification.objects.values_list("status", flat=True)) == \
        ["firing", "resolved"]
    assert AlertEvaluation.objects.filter(rule=rule).count() == 2  # two minutes, not three
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_a_target_failing_twice_then_succeeding_is_one_delivery_with_three_attempts(
        worker, receiver, webhook_secret):
    hook = make_channel("hooks", "webhook", target=receiver.url("/webhook"),
                        secret=webhook_secret)
    receiver.script("/webhook", [500, 502])
    make_rule(channels=[hook])
    minute = clock.floor_minute(timezone.now()) - timedelta(minutes=30)
    write_minute("request", "/courses/", "GET", minute, 3000)

    tick(minute + timedelta(minutes=1))
    wait_until(lambda: AlertNotification.objects.filter(status="delivered").exists(),
               what="delivered after retries")

    row = AlertNotification.objects.get()
    assert row.attempts == 3
    assert list(NotificationDelivery.objects.filter(notification=row).order_by("attempt")
                .values_list("attempt", "outcome", "status_code")) == \
        [(1, "retry", 500), (2, "retry", 502), (3, "success", 200)]
    assert len(receiver.all("/webhook")) == 3 and len(receiver.delivered("/webhook")) == 1
    assert {r.key for r in receiver.all("/webhook")} == {row.idempotency_key}
    assert all(r.signature_ok for r in receiver.all("/webhook"))


def test_beat_ticks_for_the_same_minute_evaluate_each_rule_once(worker, receiver):
    slack = make_channel("slack", "slack", target=receiver.url("/slack"))
    rules = [make_rule(key=f"rule-{i}", name=f"Rule {i}", channels=[slack]) for i in range(5)]
    minute = clock.floor_minute(timezone.now()) - timedelta(minutes=30)
    write_minute("request", "/courses/", "GET", minute, 3000)

    for _ in range(4):  # four beats fire for the same minute, four threads pick them up
        tick(minute + timedelta(minutes=1))
    wait_until(lambda: AlertNotification.objects.filter(status="delivered").count() == 5,
               what="one notification per rule")
    time.sleep(1.0)

    claims = AlertEvaluation.objects.filter(rule__in=rules)
    assert claims.count() == 5 and {c.minute for c in claims} == {minute + timedelta(minutes=1)}
    assert PerformanceAlert.objects.filter(rule__in=rules).count() == 5
    assert len(receiver.all("/slack")) == 5


def test_a_worker_killed_mid_delivery_still_gives_one_delivery(worker, receiver,
                                                              webhook_secret):
    hook = make_channel("hooks", "webhook", target=receiver.url("/webhook"),
                        secret=webhook_secret)
    receiver.delays["/webhook"] = [15.0]  # the first request hangs: the worker dies waiting
    make_rule(channels=[hook])
    minute = clock.floor_minute(timezone.now()) - timedelta(minutes=30)
    write_minute("request", "/courses/", "GET", minute, 3000)

    tick(minute + timedelta(minutes=1))
    assert receiver.wait_for(lambda: len(receiver.all("/webhook")) == 1, timeout=25)
    worker.kill()  # kill -9 while the request is in flight: the task is never acknowledged
    assert AlertNotification.objects.get().status == "sending"
    worker.start()

    wait_until(lambda: AlertNotification.objects.filter(status="delivered").exists(),
               timeout=40, what="redelivery after the worker was killed")
    row = AlertNotification.objects.get()
    requests = receiver.all("/webhook")
    assert len(requests) == 2 and {r.key for r in requests} == {row.idempotency_key}
    assert len(receiver.delivered("/webhook")) == 1  # the receiver acted once
    assert all(r.signature_ok for r in requests)
    assert list(NotificationDelivery.objects.filter(notification=row).order_by("attempt")
                .values_list("attempt", "outcome")) == [(1, "lost"), (2, "success")]
