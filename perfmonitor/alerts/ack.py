"""Acknowledging an alert episode: a compare-and-set on its version.

The engine bumps ``version`` on every write and holds the row lock while it
evaluates; an ack is one conditional UPDATE (``WHERE version = seen AND NOT
acknowledged AND state is open``). So an ack racing a resolve either lands
before it (the resolve then keeps the ack) or fails with a conflict that shows
the resolved episode; neither write is lost. An ack stops repeats and
escalation and cancels the repeat / escalation notifications not yet sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F

from perfmonitor import live
from perfmonitor.alerts import clock
from perfmonitor.alerts.outbox import enqueue
from perfmonitor.models import PerformanceAlert
from perfmonitor.models.alerts import OPEN_STATES


class AckConflict(Exception):
    def __init__(self, alert: PerformanceAlert, reason: str) -> None:
        super().__init__(reason)
        self.alert = alert
        self.reason = reason


def _refuse(alert: PerformanceAlert, expected_version: int | None) -> None:
    if alert.acknowledged:
        who = getattr(alert.acknowledged_by, "get_username", lambda: "someone")()
        when = f"{alert.acknowledged_at:%Y-%m-%d %H:%M:%S}" if alert.acknowledged_at else "?"
        raise AckConflict(alert, f"Already acknowledged by {who} at {when} UTC.")
    if alert.state not in OPEN_STATES:
        when = f"{alert.resolved_at:%Y-%m-%d %H:%M:%S}" if alert.resolved_at else "?"
        raise AckConflict(alert, f"Already {alert.state} at {when} UTC; nothing to acknowledge.")
    if expected_version is not None and alert.version != expected_version:
        raise AckConflict(alert, f"The alert changed since you loaded it (version "
                                 f"{expected_version} → {alert.version}); reload and retry.")


def acknowledge(alert_pk: Any, user: Any, *, expected_version: int | None = None,
                now: datetime | None = None, attempts: int = 5) -> PerformanceAlert:
    """Acknowledge an open episode; raises AckConflict with the current episode otherwise."""
    now = now or clock.now()
    for _ in range(attempts):
        alert = PerformanceAlert.objects.select_related("acknowledged_by").get(pk=alert_pk)
        _refuse(alert, expected_version)
        with transaction.atomic():
            updated = PerformanceAlert.objects.filter(
                pk=alert.pk, version=alert.version, acknowledged=False,
                state__in=OPEN_STATES).update(
                acknowledged=True, acknowledged_by=user, acknowledged_at=now,
                next_escalation_at=None, version=F("version") + 1)
            if updated:
                enqueue.cancel_unsent(alert, prefixes=("repeat:", "escalation:"))
                alert.refresh_from_db()
                payload = {"type": "alert_ack", "id": str(alert.pk), "alert_id": alert.alert_id,
                           "state": alert.state, "acknowledged": True,
                           "acknowledged_by": getattr(user, "get_username", lambda: "")()}
                transaction.on_commit(lambda p=payload: live.publish("alerts", p, force=True))
                return alert
        # the version moved between our read and write: read again (and re-check)
    alert = PerformanceAlert.objects.get(pk=alert_pk)
    raise AckConflict(alert, "The alert keeps changing; try again.")
