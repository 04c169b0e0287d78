"""Delivering notifications to (local stand-ins for) Slack, webhooks, SMS, email and in-app."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings

from perfmonitor.alerts import clock
from perfmonitor.alerts.outbox.delivery import backoff_seconds, deliver
from perfmonitor.models import (
    AlertNotification,
    InAppNotification,
    NotificationChannel,
    NotificationDelivery,
    PerformanceAlert,
    Silence,
)
from tests.alerts.helpers import fire, make_channel, make_rule, pm_settings

pytestmark = pytest.mark.django_db


def deliver_until_settled(row: AlertNotification, at, rounds: int = 10) -> list[str]:
    """Deliver ``row`` as the task would: attempt, wait out the backoff, attempt again."""
    frozen = clock.FrozenClock(at)
    outcomes = []
    with clock.use_clock(frozen):
        for _ in range(rounds):
            row.refresh_from_db()
            frozen.set(max(frozen(), row.due_at))
            outcome = deliver(row.pk)
            outcomes.append(outcome.status)
            if outcome.status not in ("retry", "wait"):
                break
    return outcomes


def test_webhook_gets_alertmanager_v4_json_with_a_verifiable_signature(receiver, webhook_secret):
    hook = make_channel("hooks", "webhook", target=receiver.url("/webhook"),
                        secret=webhook_secret)
    at = fire(make_rule(channels=[hook], group_by=["route"]))
    row = AlertNotification.objects.get()

    assert deliver_until_settled(row, at) == ["delivered"]

    [request] = receiver.all("/webhook")
    assert request.signature_ok is True
    assert request.headers["webhook-id"] == request.headers["idempotency-key"] == \
        row.idempotency_key
    body = request.json
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["receiver"] == "hooks" and body["truncatedAlerts"] == 0
    [alert] = body["alerts"]
    assert alert["labels"] == {"alertname": "Slow courses", "rule": "test-rule",
                               "route": "/courses/", "severity": "warning"}
    assert alert["status"] == "firing" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert "2.50 s" in alert["annotations"]["summary"]
    assert body["perfmonitor"]["value"] == pytest.approx(2500, rel=0.02)


def test_a_tampered_body_or_a_wrong_secret_does_not_verify(receiver, webhook_secret):
    from perfmonitor.alerts.notifiers.webhook import generate_secret, sign, verify

    body = b'{"version":"4"}'
    import time

    stamp = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(stamp),
               "webhook-signature": sign(webhook_secret, "msg_1", stamp, body)}
    assert verify(webhook_secret, headers, body)
    assert not verify(webhook_secret, headers, body + b" ")
    assert not verify(generate_secret(), headers, body)
    assert not verify(webhook_secret, {**headers, "webhook-timestamp": str(stamp - 3600)}, body)


def test_failing_twice_then_succeeding_is_one_delivery_with_three_attempts(receiver,
                                                                          webhook_secret):
    hook = make_channel("hooks", "webhook", target=receiver.url("/webhook"),
                        secret=webhook_secret)
    receiver.script("/webhook", [500, 503])
    at = fire(make_rule(channels=[hook]))
    row = AlertNotification.objects.get()

    assert deliver_until_settled(row, at) == ["retry", "retry", "delivered"]

    attempts = list(NotificationDelivery.objects.filter(notification=row).order_by("attempt")
                    .values_list("attempt", "outcome", "status_code"))
    assert attempts == [(1, "retry", 500), (2, "retry", 503),
                        (3, "success", 200)]
    assert len(receiver.delivered("/webhook")) == 1
    assert {r.key for r in receiver.all("/webhook")} == {row.idempotency_key}
    assert all(r.signature_ok for r in receiver.all("/webhook"))
    row.refresh_from_db()
    assert row.status == "delivered" and row.attempts == 3


def test_backoff_is_exponential_with_jitter_and_capped():
    with override_settings(PERFMONITOR=pm_settings(ALERT_NOTIFY_BACKOFF_SECONDS=10,
                                                   ALERT_NOTIFY_BACKOFF_MAX=60)):
        for attempt, ceiling in ((1, 10), (2, 20), (3, 40), (4, 60), (9, 60)):
            delays = [backoff_seconds(attempt) for _ in range(200)]
            assert all(ceiling / 2 <= d <= ceiling for d in delays)
            assert len({round(d, 3) for d in delays}) > 50  # jittered, not fixed
        assert backoff_seconds(1, retry_after=45) == 45  # Retry-After wins when longer


def test_a_client_error_is_not_retried(receiver, webhook_secret):
    hook = make_channel("hooks", "slack", target=receiver.url("/slack"))
    receiver.script("/slack", [400])
    at = fire(make_rule(channels=[hook]))
    row = AlertNotification.objects.get()

    assert deliver_until_settled(row, at) == ["failed"]
    row.refresh_from_db()
    assert row.status == "failed" and row.attempts == 1 and row.last_error == "HTTP 400"


def test_too_many_requests_is_retried(receiver):
    hook = make_channel("hooks", "slack", target=receiver.url("/slack"))
    receiver.script("/slack", [429])
    at = fire(make_rule(channels=[hook]))

    assert deliver_until_settled(AlertNotification.objects.get(), at) == ["retry", "delivered"]


def test_gone_disables_the_channel(receiver):
    hook = make_channel("hooks", "slack", target=receiver.url("/slack"))
    receiver.script("/slack", [410])
    rule = make_rule(channels=[hook], repeat_interval_seconds=60)
    at = fire(rule)

    assert deliver_until_settled(AlertNotification.objects.get(), at) == ["failed"]
    hook.refresh_from_db()
    assert hook.enabled is False and hook.disabled_reason.startswith("410 Gone")
    fire(rule, at=at + timedelta(minutes=2))  # a repeat would be due: not to a disabled channel
    assert AlertNotification.objects.count() == 1


def test_attempts_are_bounded(receiver):
    hook = make_channel("hooks", "slack", target=receiver.url("/slack"))
    receiver.script("/slack", [500, 500, 500])
    at = fire(make_rule(channels=[hook]))
    with override_settings(PERFMONITOR=pm_settings(ALERT_NOTIFY_MAX_ATTEMPTS=2)):
        assert deliver_until_settled(AlertNotification.objects.get(), at) == ["retry", "failed"]


def test_an_unreachable_target_is_a_retryable_network_error():
    hook = make_channel("hooks", "slack", target="http://127.0.0.1:9/never")
    at = fire(make_rule(channels=[hook]))
    with override_settings(PERFMONITOR=pm_settings(ALERT_NOTIFY_MAX_ATTEMPTS=1)):
        assert deliver_until_settled(AlertNotification.objects.get(), at) == ["failed"]
    log = NotificationDelivery.objects.get()
    assert log.error.startswith("network error")


def test_repeated_failures_raise_a_self_alert_that_resolves_when_delivery_works(receiver):
    ops = make_channel("ops")  # in-app
    hook = make_channel("hooks", "slack", target=receiver.url("/slack"))
    receiver.script("/slack", [500, 500, 500])
    at = fire(make_rule(channels=[hook]))
    row = AlertNotification.objects.get(channel=hook)

    with override_settings(PERFMONITOR=pm_settings(ALERT_SELF_ALERT_FAILURES=3)):
        assert deliver_until_settled(row, at, rounds=3) == ["retry", "retry", "retry"]
        self_alert = PerformanceAlert.objects.get(alert_type="notification_delivery")
        assert self_alert.state == "firing"
        assert self_alert.labels["alertname"] == "NotificationDeliveryFailing"
        assert self_alert.labels["channel"] == "hooks"
        notes = AlertNotification.objects.filter(alert=self_alert)
        # to the in-app channels (ours and the one installed with the default rules), never
        # to the failing one
        assert {n.channel.name for n in notes} == {"ops", "In-app"}
        note = notes.get(channel=ops)
        assert deliver_until_settled(note, at) == ["delivered"]

        assert deliver_until_settled(row, at + timedelta(minutes=10)) == ["delivered"]

    self_alert.refresh_from_db()
    assert self_alert.state == "resolved" and self_alert.resolution_reason == "channel_recovered"
    resolved = AlertNotification.objects.get(alert=self_alert, event="resolved", channel=ops)
    assert deliver_until_settled(resolved, at + timedelta(hours=1)) == ["delivered"]
    assert [n.status for n in InAppNotification.objects.filter(alert=self_alert)
            .order_by("created_at")] == ["firing", "resolved"]


def test_slack_gets_blocks_and_a_text_fallback(receiver):
    hook = make_channel("team-slack", "slack", target=receiver.url("/slack"))
    at = fire(make_rule(channels=[hook]))
    deliver_until_settled(AlertNotification.objects.get(), at)
    [request] = receiver.all("/slack")
    body = request.json
    assert body["text"].startswith("[FIRING:warning] Slow courses")
    assert [b["type"] for b in body["blocks"]][:3] == ["header", "section", "context"]
    assert request.headers["idempotency-key"] == AlertNotification.objects.get().idempotency_key


def test_sms_goes_to_each_number_through_the_configured_http_api(receiver):
    phones = make_channel("on-call", "sms", target="+4915112345678, +4915187654321")
    at = fire(make_rule(channels=[phones]))
    row = AlertNotification.objects.get()
    with override_settings(PERFMONITOR=pm_settings(ALERT_SMS_API_URL=receiver.url("/sms"),
                                                   ALERT_SMS_API_TOKEN="t0ken",
                                                   ALERT_SMS_FROM="LMS")):
        assert deliver_until_settled(row, at) == ["delivered"]
    sent = receiver.all("/sms")
    assert [r.json["to"] for r in sent] == ["+4915112345678", "+4915187654321"]
    assert [r.key for r in sent] == [f"{row.idempotency_key}:0", f"{row.idempotency_key}:1"]
    assert sent[0].headers["authorization"] == "Bearer t0ken"
    assert sent[0].json["from"] == "LMS" and "Slow courses" in sent[0].json["body"]


def test_email_carries_the_idempotency_key_as_message_id():
    team = make_channel("team-mail", "email", target="ops@example.com, dev@example.com")
    at = fire(make_rule(channels=[team]))
    row = AlertNotification.objects.get()
    assert deliver_until_settled(row, at) == ["delivered"]
    [message] = mail.outbox
    assert message.to == ["ops@example.com", "dev@example.com"]
    assert message.subject == "[FIRING:warning] Slow courses"
    assert message.extra_headers["Message-ID"] == f"<{row.idempotency_key}@perfmonitor>"


def test_in_app_notifications_are_stored_once():
    ops = make_channel("ops")
    at = fire(make_rule(channels=[ops]))
    row = AlertNotification.objects.get()
    deliver_until_settled(row, at)
    assert deliver(row.pk).status == "done"  # a duplicate task message changes nothing
    item = InAppNotification.objects.get()
    assert item.title == "[FIRING:warning] Slow courses" and item.status == "firing"


def test_a_worker_lost_mid_attempt_is_taken_over_after_its_lease(receiver):
    hook = make_channel("hooks", "slack", target=receiver.url("/slack"))
    at = fire(make_rule(channels=[hook]))
    row = AlertNotification.objects.get()
    # a worker claimed the row and died before recording anything
    AlertNotification.objects.filter(pk=row.pk).update(status="sending", attempts=1,
                                                       lease_until=at + timedelta(seconds=40))
    NotificationDelivery.objects.create(notification=row, attempt=1, started_at=at)

    with clock.use_clock(clock.FrozenClock(at + timedelta(seconds=10))):
        assert deliver(row.pk).status == "wait"  # still leased: nobody else may send
    with clock.use_clock(clock.FrozenClock(at + timedelta(seconds=41))):
        assert deliver(row.pk).status == "delivered"
    assert list(NotificationDelivery.objects.filter(notification=row).order_by("attempt")
                .values_list("attempt", "outcome")) == [(1, "lost"), (2, "success")]


def test_a_silence_created_after_the_row_defers_it(receiver):
    hook = make_channel("hooks", "slack", target=receiver.url("/slack"))
    rule = make_rule(channels=[hook])
    at = fire(rule)
    Silence.objects.create(matchers=[{"label": "alertname", "op": "=", "value": rule.name}],
                           starts_at=at - timedelta(minutes=1), ends_at=at + timedelta(hours=1),
                           comment="deploy")
    with clock.use_clock(clock.FrozenClock(at)):
        assert deliver(AlertNotification.objects.get().pk).status == "deferred"
    assert receiver.all() == [] and NotificationDelivery.objects.count() == 0


def test_disabled_channels_get_no_new_notifications():
    off = make_channel("off", enabled=False)
    fire(make_rule(channels=[off]))
    assert PerformanceAlert.objects.get().state == "firing"
    assert AlertNotification.objects.count() == 0
    assert NotificationChannel.objects.get(name="off").enabled is False
