"""Delivering one outbox row: claim, send, log the attempt, decide what next.

At least once, never two senders at a time:

* A worker *claims* the row with one conditional UPDATE (pending and due, or
  sending with an expired lease) that also counts the attempt and sets a
  lease. A duplicate task message finds nothing to claim and stops.
* The network call happens outside any transaction. Every attempt has a
  ``NotificationDelivery`` row, written when the attempt starts (so an attempt
  cut short by a killed worker stays visible, marked ``lost`` by the next one).
* Success marks the row delivered. 2xx is success; 429, 5xx and network
  errors are retried with exponential backoff and jitter (honouring
  ``Retry-After``) until ``ALERT_NOTIFY_MAX_ATTEMPTS``; any other 4xx is
  final; 410 Gone also disables the channel.
* Every attempt carries the same idempotency key, so a receiver that got an
  attempt whose answer was lost drops the retry.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q

from perfmonitor.alerts import clock
from perfmonitor.alerts.engine import WORKER
from perfmonitor.alerts.notifiers import DeliveryResult, get_notifier
from perfmonitor.alerts.outbox import self_alert
from perfmonitor.alerts.silences import is_muted
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.conf import settings
from perfmonitor.models import AlertNotification, NotificationChannel, NotificationDelivery
from perfmonitor.models.notifications import DeliveryOutcome, NotificationStatus

logger = logging.getLogger("perfmonitor.alerts")
LEASE_MARGIN_SECONDS = 5.0
MUTED_RECHECK_SECONDS = 60.0
FIRING_EVENTS = ("firing", "no_data", "error", "severity:", "repeat:", "escalation:")


@dataclass(frozen=True)
class Outcome:
    status: str  # delivered, retry, failed, wait, done, deferred, gone
    retry_in: float | None = None
    attempt: int = 0


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with equal jitter: half fixed, half random (attempt is 1-based)."""
    cap = float(settings.ALERT_NOTIFY_BACKOFF_MAX)
    ceiling = min(cap, float(settings.ALERT_NOTIFY_BACKOFF_SECONDS) * 2 ** (attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def _claim(notification_id: Any, now: datetime) -> Outcome | None:
    # long enough for one attempt (a slow-dripping target can take a timeout per read)
    lease = now + timedelta(seconds=2 * float(settings.ALERT_NOTIFY_TIMEOUT)
                            + LEASE_MARGIN_SECONDS)
    claimable = Q(status=NotificationStatus.PENDING, due_at__lte=now) | \
        Q(status=NotificationStatus.SENDING, lease_until__lt=now)
    if AlertNotification.objects.filter(claimable, pk=notification_id).update(
            status=NotificationStatus.SENDING, lease_until=lease, attempts=F("attempts") + 1):
        return None
    row = AlertNotification.objects.filter(pk=notification_id).values(
        "status", "due_at", "lease_until").first()
    if row is None:
        return Outcome("gone")
    if row["status"] == NotificationStatus.PENDING:
        return Outcome("wait", max(0.0, (row["due_at"] - now).total_seconds()))
    if row["status"] == NotificationStatus.SENDING:
        return Outcome("wait", max(0.0, (row["lease_until"] - now).total_seconds()) + 1.0)
    return Outcome("done")


def _muted(row: AlertNotification, now: datetime) -> bool:
    if not row.event.startswith(FIRING_EVENTS) or row.alert.rule_id is None:
        return False
    return is_muted(row.alert.labels or {}, now)


def deliver(notification_id: Any, *, worker: str = WORKER) -> Outcome:
    """Make one delivery attempt of an outbox row if it is due and nobody else is on it."""
    with capture_suppressed():
        now = clock.now()
        waiting = _claim(notification_id, now)
        if waiting is not None:
            return waiting
        row = AlertNotification.objects.select_related("channel", "alert").get(
            pk=notification_id)
        if _muted(row, now):
            # a silence started since the row was written; the engine cancels it next minute
            AlertNotification.objects.filter(pk=row.pk, status=NotificationStatus.SENDING).update(
                status=NotificationStatus.PENDING, attempts=F("attempts") - 1, lease_until=None,
                due_at=now + timedelta(seconds=MUTED_RECHECK_SECONDS))
            return Outcome("deferred", MUTED_RECHECK_SECONDS)
        NotificationDelivery.objects.filter(notification=row,
                                            outcome=DeliveryOutcome.IN_PROGRESS).update(
            outcome=DeliveryOutcome.LOST, error="the worker was lost during this attempt")
        log = NotificationDelivery.objects.create(notification=row, attempt=row.attempts,
                                                  started_at=now, worker=worker)
        started = time.perf_counter()
        result = _send(row)
        log.duration_ms = (time.perf_counter() - started) * 1000.0
        return _record(row, log, result)


def _send(row: AlertNotification) -> DeliveryResult:
    channel: NotificationChannel = row.channel
    if not channel.enabled:
        return DeliveryResult.failure(f"channel disabled: {channel.disabled_reason or 'by staff'}",
                                      retryable=False)
    try:
        notifier = get_notifier(channel.type)
        return notifier(channel, row.payload, row.idempotency_key,
                        float(settings.ALERT_NOTIFY_TIMEOUT))
    except Exception as exc:  # a notifier bug is a failed attempt, not a crashed worker
        logger.exception("perfmonitor: notifier %s failed", channel.type)
        return DeliveryResult.failure(f"notifier error: {exc!r}", retryable=True)


def _record(row: AlertNotification, log: NotificationDelivery, result: DeliveryResult) -> Outcome:
    now = clock.now()
    attempt = row.attempts
    owned = AlertNotification.objects.filter(pk=row.pk, status=NotificationStatus.SENDING,
                                             attempts=attempt)
    log.status_code, log.error, log.response_excerpt = (result.status_code, result.error,
                                                        result.response[:500])
    channel = row.channel
    if result.ok:
        log.outcome = DeliveryOutcome.SUCCESS
        log.save(update_fields=["outcome", "status_code", "error", "response_excerpt",
                                "duration_ms"])
        owned.update(status=NotificationStatus.DELIVERED, delivered_at=now, lease_until=None,
                     last_error="")
        self_alert.channel_succeeded(channel, now)
        return Outcome("delivered", attempt=attempt)
    final = not result.retryable or attempt >= settings.ALERT_NOTIFY_MAX_ATTEMPTS
    log.outcome = DeliveryOutcome.FAILED if final else DeliveryOutcome.RETRY
    log.save(update_fields=["outcome", "status_code", "error", "response_excerpt",
                            "duration_ms"])
    if result.status_code == 410:
        NotificationChannel.objects.filter(pk=channel.pk).update(
            enabled=False, disabled_reason=f"410 Gone from the target at {now:%Y-%m-%d %H:%M} "
                                           f"UTC: {result.response[:120]}")
    if final:
        owned.update(status=NotificationStatus.FAILED, lease_until=None,
                     last_error=result.error)
        self_alert.channel_failed(channel, result.error, now)
        return Outcome("failed", attempt=attempt)
    delay = backoff_seconds(attempt, result.retry_after)
    owned.update(status=NotificationStatus.PENDING, lease_until=None, last_error=result.error,
                 due_at=now + timedelta(seconds=delay))
    self_alert.channel_failed(channel, result.error, now)
    return Outcome("retry", delay, attempt)
