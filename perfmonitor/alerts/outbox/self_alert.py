"""Self-alerts: perfmonitor's own notifications keep failing on a channel.

After ``ALERT_SELF_ALERT_FAILURES`` failed attempts in a row on one channel, an
alert episode ``NotificationDeliveryFailing{channel=...}`` opens (no rule) and is
sent to every enabled in-app channel (never to the failing one) and to the
live dashboard. The next successful delivery on that channel resolves it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F

from perfmonitor.alerts.episodes import (
    SELF_ALERT_TYPE,
    fingerprint,
    publish_on_commit,
    resolve_alert,
)
from perfmonitor.alerts.outbox.book import Outbox
from perfmonitor.conf import settings
from perfmonitor.models import NotificationChannel, PerformanceAlert
from perfmonitor.models.alerts import OPEN_STATES, AlertState, Severity

logger = logging.getLogger("perfmonitor.alerts")
ALERT_NAME = "NotificationDeliveryFailing"


def _fingerprint(channel: NotificationChannel) -> str:
    return fingerprint("self", (("channel", str(channel.pk)),))


def _open_for(channel: NotificationChannel) -> PerformanceAlert | None:
    return PerformanceAlert.objects.select_for_update().filter(
        rule__isnull=True, alert_type=SELF_ALERT_TYPE, fingerprint=_fingerprint(channel),
        state__in=OPEN_STATES).first()


def channel_failed(channel: NotificationChannel, error: str, now: datetime) -> None:
    NotificationChannel.objects.filter(pk=channel.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, last_failure_at=now)
    failures = NotificationChannel.objects.filter(pk=channel.pk).values_list(
        "consecutive_failures", flat=True).first() or 0
    if failures >= settings.ALERT_SELF_ALERT_FAILURES:
        raise_self_alert(channel, error, failures, now)


def channel_succeeded(channel: NotificationChannel, now: datetime) -> None:
    NotificationChannel.objects.filter(pk=channel.pk).update(consecutive_failures=0,
                                                             last_success_at=now)
    if not PerformanceAlert.objects.filter(rule__isnull=True, alert_type=SELF_ALERT_TYPE,
                                           fingerprint=_fingerprint(channel),
                                           state__in=OPEN_STATES).exists():
        return
    with transaction.atomic():
        NotificationChannel.objects.select_for_update().filter(pk=channel.pk).first()
        alert = _open_for(channel)
        if alert is not None:
            alert.message = f"Notifications to {channel.name} are delivered again."
            resolve_alert(alert, "channel_recovered", now)


def raise_self_alert(channel: NotificationChannel, error: str, failures: int,
                     now: datetime) -> PerformanceAlert:
    message = (f"Notifications to {channel.name} ({channel.type}) are failing: {failures} "
               f"failed attempts in a row. Last error: {error}")
    with transaction.atomic():
        NotificationChannel.objects.select_for_update().filter(pk=channel.pk).first()
        alert = _open_for(channel)
        if alert is not None:
            PerformanceAlert.objects.filter(pk=alert.pk).update(
                message=message, actual_value=failures, last_evaluated_at=now,
                version=F("version") + 1)
            return alert
        labels = {"alertname": ALERT_NAME, "channel": channel.name, "severity": "warning"}
        alert = PerformanceAlert.objects.create(
            alert_id=f"{ALERT_NAME}/{channel.name}"[:255], alert_type=SELF_ALERT_TYPE,
            severity=Severity.WARNING, message=message,
            threshold=settings.ALERT_SELF_ALERT_FAILURES,
            actual_value=failures, timestamp=now, fingerprint=_fingerprint(channel),
            labels=labels, state=AlertState.FIRING, state_since=now, fired_at=now,
            last_evaluated_at=now, notified_severity=Severity.WARNING, last_notified_at=now,
            metadata={"channel": str(channel.pk)})
        targets = NotificationChannel.objects.filter(type="in_app", enabled=True).exclude(
            pk=channel.pk)
        book = Outbox()
        book.schedule(alert, list(targets), "firing", now, now)
        book.flush()
        publish_on_commit(alert, ["opened", "firing"])
    logger.error("perfmonitor: %s", message)
    return alert
