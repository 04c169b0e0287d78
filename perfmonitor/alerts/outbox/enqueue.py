"""Writing outbox rows (inside the caller's transaction) and handing them to Celery.

Rows are written in the transaction that changes the alert's state; the Celery
task is sent only after that transaction commits (``on_commit``), so a task
never looks for a row that does not exist, and a rolled-back state change
sends nothing. A message lost on the way (broker down, worker killed before
it acked) is sent again by :func:`dispatch_overdue`, which every evaluation
run calls; the delivery task's claim makes a duplicate message harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from perfmonitor.alerts import clock
from perfmonitor.alerts.outbox.messages import build_message, idempotency_key
from perfmonitor.models import AlertNotification, NotificationChannel, PerformanceAlert
from perfmonitor.models.notifications import NotificationStatus

logger = logging.getLogger("perfmonitor.alerts")
OVERDUE_GRACE = timedelta(seconds=120)
REDISPATCH_EVERY = timedelta(minutes=5)


def schedule(alert: PerformanceAlert, channels: Iterable[NotificationChannel], event: str,
             due_at: datetime, now: datetime, escalation_level: int = 0) -> list[str]:
    """Write one row per enabled channel (or revive a cancelled one); return their keys."""
    channels = [c for c in channels if c.enabled]
    if not channels:
        return []
    payload = build_message(alert, event, now, escalation_level)
    rows = {idempotency_key(c.pk, alert.pk, event): c for c in channels}
    AlertNotification.objects.bulk_create(
        [AlertNotification(idempotency_key=key, channel=channel, alert=alert, event=event,
                           payload={**payload, "receiver": channel.name}, due_at=due_at,
                           created_at=now)
         for key, channel in rows.items()],
        ignore_conflicts=True)
    cancelled = AlertNotification.objects.filter(idempotency_key__in=list(rows),
                                                 status=NotificationStatus.CANCELLED)
    for key in cancelled.values_list("idempotency_key", flat=True):
        # muted or superseded earlier, due again now (e.g. a silence ended)
        AlertNotification.objects.filter(idempotency_key=key,
                                         status=NotificationStatus.CANCELLED).update(
            status=NotificationStatus.PENDING, due_at=due_at, lease_until=None,
            payload={**payload, "receiver": rows[key].name})
    keys = list(rows)
    transaction.on_commit(lambda: dispatch_keys(keys))
    return keys


def refresh_unsent(alert: PerformanceAlert, event: str, now: datetime) -> int:
    """Re-render rows of ``event`` no attempt has touched (the alert changed in group wait)."""
    payload = build_message(alert, event, now)
    refreshed = 0
    for pk, receiver in AlertNotification.objects.filter(
            alert=alert, event=event, status=NotificationStatus.PENDING,
            attempts=0).values_list("pk", "channel__name"):
        refreshed += AlertNotification.objects.filter(
            pk=pk, status=NotificationStatus.PENDING, attempts=0).update(
            payload={**payload, "receiver": receiver})
    return refreshed


def cancel_unsent(alert: PerformanceAlert, events: Iterable[str] | None = None,
                  prefixes: Iterable[str] = ()) -> int:
    """Cancel rows of ``alert`` that no attempt has touched yet (optionally only some events)."""
    rows = AlertNotification.objects.filter(alert=alert, status=NotificationStatus.PENDING,
                                            attempts=0)
    if events is not None or prefixes:
        match = Q(event__in=list(events or []))
        for prefix in prefixes:
            match |= Q(event__startswith=prefix)
        rows = rows.filter(match)
    return rows.update(status=NotificationStatus.CANCELLED)


def notified_channel_ids(alert: PerformanceAlert) -> list[str]:
    """Channels that got (or may have got) a firing-type notification of ``alert``."""
    reached = (Q(status__in=[NotificationStatus.SENDING, NotificationStatus.DELIVERED,
                             NotificationStatus.FAILED])
               | Q(status=NotificationStatus.PENDING, attempts__gt=0))
    return list(AlertNotification.objects.filter(reached, alert=alert)
                .exclude(event="resolved").values_list("channel_id", flat=True).distinct())


def _send_task(notification_id: str, countdown: float) -> None:
    from perfmonitor.tasks import deliver_notification

    deliver_notification.apply_async(args=[notification_id], countdown=max(0.0, countdown))


def dispatch_keys(keys: list[str]) -> None:
    now = clock.now()
    for pk, due_at in AlertNotification.objects.filter(
            idempotency_key__in=keys, status=NotificationStatus.PENDING).values_list("pk",
                                                                                     "due_at"):
        dispatch(str(pk), (due_at - now).total_seconds())


def dispatch(notification_id: str, countdown: float = 0.0) -> bool:
    """Send the delivery task; never raises (the overdue sweep retries)."""
    try:
        _send_task(notification_id, countdown)
        return True
    except Exception as exc:
        logger.warning("perfmonitor: could not queue notification %s: %r", notification_id, exc)
        return False


def dispatch_overdue(now: datetime | None = None) -> int:
    """Queue again rows whose message seems lost: overdue pending rows, expired leases."""
    now = now or clock.now()
    stale = (Q(status=NotificationStatus.PENDING, due_at__lt=now - OVERDUE_GRACE)
             & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))) \
        | Q(status=NotificationStatus.SENDING, lease_until__lt=now)
    ids = list(AlertNotification.objects.filter(stale).values_list("pk", flat=True)[:500])
    if not ids:
        return 0
    AlertNotification.objects.filter(pk__in=ids, status=NotificationStatus.PENDING).update(
        lease_until=now + REDISPATCH_EVERY)
    return sum(dispatch(str(pk)) for pk in ids)
