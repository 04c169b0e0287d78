"""When an alert episode notifies whom (Alertmanager semantics, per episode).

* The first notification of a firing (or no-data / error) episode waits
  ``group_wait`` after it started firing; if the episode resolves first, the
  notification is cancelled and no resolved notification follows.
* A change (severity raised, resolved) is sent no sooner than
  ``group_interval`` after the previous notification.
* An unchanged, unacknowledged episode is notified again every
  ``repeat_interval``.
* Escalation levels (``perfmonitor.alerts.escalation``) add channels while
  nobody acknowledges; acknowledging stops repeats and escalation.
* Silences and maintenance windows mute everything but the resolved
  notification of an episode a receiver already heard about (receivers that
  open incidents need the closing message).
* Deduplication: one open episode per (rule, label fingerprint), and one
  outbox row per (channel, episode, event) by its unique idempotency key.

:func:`plan` decides; :func:`apply` records the rows in an
:class:`~perfmonitor.alerts.outbox.book.Outbox`, which the caller flushes in
the transaction that saves the episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from perfmonitor.alerts.escalation import due_escalation, first_escalation_at
from perfmonitor.alerts.outbox.book import Outbox
from perfmonitor.alerts.rules import Timing, timing
from perfmonitor.alerts.state import SEVERITY_RANK
from perfmonitor.models import AlertRule, NotificationChannel, PerformanceAlert
from perfmonitor.models.alerts import NOTIFIED_STATES, AlertState
from perfmonitor.models.notifications import NotificationStatus


@dataclass
class Send:
    event: str
    due_at: datetime
    channels: list[NotificationChannel] | None = None  # None: the rule's channels
    channel_ids: list[str] | None = None
    level: int = 0


@dataclass
class Plan:
    sends: list[Send] = field(default_factory=list)
    cancel_all: bool = False
    refresh: str = ""  # an event whose unsent rows get the current message (severity rose)

    def __bool__(self) -> bool:
        return bool(self.sends or self.cancel_all)


def _active(events: dict[str, set[str]], event: str) -> bool:
    return any(s != NotificationStatus.CANCELLED for s in events.get(event, ()))


def _unsent(events: dict[str, set[str]], event: str) -> bool:
    return bool(events.get(event)) and events[event] <= {NotificationStatus.PENDING,
                                                         NotificationStatus.CANCELLED}


def primary_event(alert: PerformanceAlert) -> str:
    return "firing" if alert.state in (AlertState.FIRING, AlertState.RECOVERING) else alert.state


def plan(alert: PerformanceAlert, rule: AlertRule | None, transitions: list[str], now: datetime,
         muted: bool, channels_by_name: dict[str, NotificationChannel], book: Outbox) -> Plan:
    """Decide the notifications of ``alert`` at ``now``; updates its bookkeeping fields."""
    t = timing(rule)
    result = Plan()
    if "resolved" in transitions or "cleared" in transitions or not alert.is_open:
        result.cancel_all = True
        alert.next_escalation_at = None
        if "resolved" in transitions and (rule is None or rule.send_resolved) \
                and alert.notified_severity:
            ids = book.notified_channel_ids(alert)
            if ids:
                result.sends.append(Send("resolved", _after_interval(alert, t, now),
                                         channel_ids=ids))
        return result
    if alert.state not in NOTIFIED_STATES:
        return result
    if muted:
        result.cancel_all = True
        return result
    events = book.events(alert)
    primary = primary_event(alert)
    if not _active(events, primary):
        start = alert.fired_at if primary == "firing" and alert.fired_at else alert.state_since
        due = max(now, (start or now) + timedelta(seconds=t.group_wait))
        result.sends.append(Send(primary, due))
        alert.notified_severity, alert.last_notified_at = alert.severity, due
        if primary == "firing" and rule is not None and not alert.acknowledged \
                and alert.next_escalation_at is None and not alert.escalation_level:
            alert.next_escalation_at = first_escalation_at(rule, alert.fired_at or now)
        return result
    if SEVERITY_RANK.get(alert.severity, 0) > SEVERITY_RANK.get(alert.notified_severity, 0):
        event = f"severity:{alert.severity}"
        if _unsent(events, primary):
            result.refresh = primary  # still in group wait: the first message says it all
        elif not _active(events, event):
            due = _after_interval(alert, t, now)
            result.sends.append(Send(event, due))
            alert.last_notified_at = due
        alert.notified_severity = alert.severity
    if alert.acknowledged or rule is None:
        return result
    if alert.last_notified_at and now >= alert.last_notified_at + timedelta(
            seconds=t.repeat_interval):
        alert.repeat_count += 1
        result.sends.append(Send(f"repeat:{alert.repeat_count}", now))
        alert.last_notified_at = now
    escalation = due_escalation(rule, alert, now)
    if escalation is not None:
        targets = [channels_by_name[n] for n in escalation.channels if n in channels_by_name]
        result.sends.append(Send(escalation.event, now, channels=targets, level=escalation.level))
    return result


def _after_interval(alert: PerformanceAlert, t: Timing, now: datetime) -> datetime:
    if alert.last_notified_at is None:
        return now
    return max(now, alert.last_notified_at + timedelta(seconds=t.group_interval))


def apply(alert: PerformanceAlert, rule_channels: list[NotificationChannel], result: Plan,
          now: datetime, book: Outbox, channels_by_pk: dict[Any, NotificationChannel]) -> int:
    """Record the planned rows in ``book`` (written by ``book.flush()``); returns how many
    events were scheduled."""
    if result.cancel_all:
        cancelled = book.cancel_unsent(alert)
        if cancelled and alert.is_open and not book.notified_channel_ids(alert):
            # muted before anything went out: the first notification is still owed
            alert.notified_severity, alert.last_notified_at = "", None
    if result.refresh:
        book.refresh_unsent(alert, result.refresh, now)
    scheduled = 0
    for send in result.sends:
        if send.channel_ids is not None:
            targets = [channels_by_pk[pk] for pk in send.channel_ids if pk in channels_by_pk]
        elif send.channels is not None:
            targets = send.channels
        else:
            targets = rule_channels
        if book.schedule(alert, targets, send.event, send.due_at, now, send.level):
            scheduled += 1
    return scheduled
