"""The outbox rows of a set of episodes, read once, changed in memory, written in one go.

An evaluation run touches many episodes; reading and writing their
notification rows one episode at a time would cost several queries each.
:class:`Outbox` loads the rows of every episode the run may touch in one
query, answers the notification planner from memory, and :meth:`Outbox.flush`
writes the changes (cancel, revive, re-render, create) in a handful of
statements inside the caller's transaction. Delivery tasks are sent after the
commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from perfmonitor.alerts.outbox.enqueue import dispatch_keys
from perfmonitor.alerts.outbox.messages import build_message, idempotency_key
from perfmonitor.models import AlertNotification, NotificationChannel, PerformanceAlert
from perfmonitor.models.notifications import NotificationStatus

PENDING, CANCELLED = NotificationStatus.PENDING, NotificationStatus.CANCELLED
REACHED = {NotificationStatus.SENDING, NotificationStatus.DELIVERED, NotificationStatus.FAILED}


@dataclass
class Row:
    key: str
    event: str
    channel_id: Any
    status: str
    attempts: int

    @property
    def untouched(self) -> bool:
        return self.status == PENDING and self.attempts == 0

    @property
    def reached(self) -> bool:
        """The channel got, or may have got, this notification."""
        return self.status in REACHED or (self.status == PENDING and self.attempts > 0)


class Outbox:
    def __init__(self, rows: dict[Any, list[Row]] | None = None) -> None:
        self.rows: dict[Any, list[Row]] = rows or {}
        self._new: list[AlertNotification] = []
        self._cancel: set[Any] = set()
        self._revive: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self._refresh: dict[str, dict[str, Any]] = {}

    @classmethod
    def load(cls, alert_ids: Iterable[Any]) -> Outbox:
        rows: dict[Any, list[Row]] = {}
        ids = list(alert_ids)
        if ids:
            for alert_id, key, event, channel_id, status, attempts in (
                    AlertNotification.objects.filter(alert_id__in=ids).values_list(
                        "alert_id", "idempotency_key", "event", "channel_id", "status",
                        "attempts")):
                rows.setdefault(alert_id, []).append(Row(key, event, channel_id, status,
                                                         attempts))
        return cls(rows)

    # -- questions the planner asks -----------------------------------------------------------

    def events(self, alert: PerformanceAlert) -> dict[str, set[str]]:
        """{event: statuses}; a row an attempt touched counts as sending."""
        found: dict[str, set[str]] = {}
        for row in self.rows.get(alert.pk, []):
            status = NotificationStatus.SENDING if row.reached and row.status == PENDING \
                else row.status
            found.setdefault(row.event, set()).add(status)
        return found

    def notified_channel_ids(self, alert: PerformanceAlert) -> list[Any]:
        return sorted({row.channel_id for row in self.rows.get(alert.pk, [])
                       if row.reached and row.event != "resolved"}, key=str)

    # -- changes ------------------------------------------------------------------------------

    def cancel_unsent(self, alert: PerformanceAlert) -> int:
        cancelled = 0
        for row in self.rows.get(alert.pk, []):
            if row.untouched:
                row.status = CANCELLED
                self._revive.pop(row.key, None)
                cancelled += 1
        if cancelled:
            self._cancel.add(alert.pk)
        return cancelled

    def refresh_unsent(self, alert: PerformanceAlert, event: str, now: datetime) -> None:
        channels = {c.pk: c.name for c in NotificationChannel.objects.filter(
            pk__in=[r.channel_id for r in self.rows.get(alert.pk, []) if r.event == event])}
        payload = build_message(alert, event, now)
        for row in self.rows.get(alert.pk, []):
            if row.event == event and row.untouched:
                self._refresh[row.key] = {**payload, "receiver": channels.get(row.channel_id)}

    def schedule(self, alert: PerformanceAlert, channels: Iterable[NotificationChannel],
                 event: str, due_at: datetime, now: datetime, level: int = 0) -> list[str]:
        """One row per enabled channel, unless it exists (a cancelled one comes back)."""
        targets = [c for c in channels if c.enabled]
        if not targets:
            return []
        payload = build_message(alert, event, now, level)
        existing = {(r.event, r.channel_id): r for r in self.rows.get(alert.pk, [])}
        keys = []
        for channel in targets:
            body = {**payload, "receiver": channel.name}
            row = existing.get((event, channel.pk))
            if row is not None:
                if row.status == CANCELLED:
                    row.status = PENDING
                    self._revive[row.key] = (due_at, body)
                    keys.append(row.key)
                continue
            key = idempotency_key(channel.pk, alert.pk, event)
            self._new.append(AlertNotification(
                idempotency_key=key, channel=channel, alert=alert, event=event, payload=body,
                due_at=due_at, created_at=now))
            self.rows.setdefault(alert.pk, []).append(Row(key, event, channel.pk, PENDING, 0))
            keys.append(key)
        return keys

    def slice(self, alert_ids: Iterable[Any]) -> Outbox:
        """An outbox over some of these episodes' rows (changes kept apart until absorbed)."""
        return Outbox({pk: self.rows[pk] for pk in alert_ids if pk in self.rows})

    def absorb(self, other: Outbox) -> None:
        """Take over another outbox's pending changes (a rule that was applied)."""
        self._new += other._new
        self._cancel |= other._cancel
        self._revive.update(other._revive)
        self._refresh.update(other._refresh)

    def flush(self) -> int:
        """Write the changes in the current transaction; send tasks after the commit."""
        if self._cancel:
            AlertNotification.objects.filter(alert_id__in=self._cancel, status=PENDING,
                                             attempts=0).update(status=CANCELLED)
        for key, (due_at, payload) in self._revive.items():
            AlertNotification.objects.filter(idempotency_key=key, status=CANCELLED).update(
                status=PENDING, due_at=due_at, lease_until=None, payload=payload)
        for key, payload in self._refresh.items():
            AlertNotification.objects.filter(idempotency_key=key, status=PENDING,
                                             attempts=0).update(payload=payload)
        if self._new:
            AlertNotification.objects.bulk_create(self._new, batch_size=500,
                                                  ignore_conflicts=True)
        keys = [n.idempotency_key for n in self._new] + list(self._revive)
        written = len(keys)
        if keys:
            transaction.on_commit(lambda: dispatch_keys(keys))
        self._new, self._cancel, self._revive, self._refresh = [], set(), {}, {}
        return written
