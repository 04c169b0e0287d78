"""Handing outbox rows to Celery, and cancelling rows nobody sent yet.

Rows are written (``perfmonitor.alerts.outbox.book``) in the transaction that
changes the alert's state; the Celery task is sent only after that transaction
commits (``on_commit``), so a task never looks for a row that does not exist,
and a rolled-back state change sends nothing. A message lost on the way
(broker down, worker killed before it acked) is sent again by
:func:`dispatch_overdue`, which every evaluation run calls; the delivery
task's claim makes a duplicate message harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Q

from perfmonitor.alerts import clock
from perfmonitor.models import AlertNotification, PerformanceAlert
from perfmonitor.models.notifications import NotificationStatus

logger = logging.getLogger("perfmonitor.alerts")
OVERDUE_GRACE = timedelta(seconds=120)
REDISPATCH_EVERY = timedelta(minutes=5)


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


def dispatch_many(jobs: list[tuple[str, float]]) -> int:
    """Send a delivery task per (notification id, countdown) over one producer; never raises
    (a message that could not be sent is picked up by the overdue sweep)."""
    if not jobs:
        return 0
    from perfmonitor.tasks import deliver_notification

    sent = 0
    try:
        with deliver_notification.app.producer_or_acquire() as producer:
            for notification_id, countdown in jobs:
                deliver_notification.apply_async(args=[notification_id],
                                                 countdown=max(0.0, countdown),
                                                 producer=producer)
                sent += 1
    except Exception as exc:
        logger.warning("perfmonitor: could not queue %d notification(s): %r",
                       len(jobs) - sent, exc)
    return sent


def dispatch_keys(keys: list[str]) -> int:
    now = clock.now()
    return dispatch_many([(str(pk), (due_at - now).total_seconds()) for pk, due_at in
                          AlertNotification.objects.filter(
                              idempotency_key__in=keys, status=NotificationStatus.PENDING)
                          .values_list("pk", "due_at")])


def dispatch(notification_id: str, countdown: float = 0.0) -> bool:
    return dispatch_many([(notification_id, countdown)]) == 1


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
    return dispatch_many([(str(pk), 0.0) for pk in ids])
