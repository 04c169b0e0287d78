"""Escalation levels: who else hears about an alert nobody acknowledges.

A rule's ``escalation`` is a list of levels, each ``{"after_seconds", "channels"}``.
Level 1 is due ``after_seconds`` after the alert fired, each next level that
long after the previous one. After the last level the levels run again
``escalation_loops`` times. Acknowledging the alert stops escalation (and
cancels escalation notifications not yet sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from perfmonitor.alerts.rules import escalation_levels
from perfmonitor.models import AlertRule, PerformanceAlert


@dataclass(frozen=True)
class Escalation:
    level: int  # 1-based
    loop: int  # 0 for the first pass
    channels: tuple[str, ...]

    @property
    def event(self) -> str:
        return f"escalation:{self.loop}.{self.level}"


def first_escalation_at(rule: AlertRule, fired_at: datetime) -> datetime | None:
    levels = escalation_levels(rule)
    return fired_at + timedelta(seconds=levels[0].after_seconds) if levels else None


def due_escalation(rule: AlertRule, alert: PerformanceAlert, now: datetime) -> Escalation | None:
    """The escalation to send now, advancing the alert's level, loop and next time; or None."""
    if alert.acknowledged or alert.next_escalation_at is None or now < alert.next_escalation_at:
        return None
    levels = escalation_levels(rule)
    if not levels:
        alert.next_escalation_at = None
        return None
    level, loop = alert.escalation_level + 1, alert.escalation_loop
    if level > len(levels):  # past the last level: the next loop starts at level 1
        level, loop = 1, loop + 1
    if loop > rule.escalation_loops:
        alert.next_escalation_at = None
        return None
    due = alert.next_escalation_at
    alert.escalation_level, alert.escalation_loop = level, loop
    if level < len(levels):
        alert.next_escalation_at = due + timedelta(seconds=levels[level].after_seconds)
    elif loop < rule.escalation_loops:
        alert.next_escalation_at = due + timedelta(seconds=levels[0].after_seconds)
    else:
        alert.next_escalation_at = None
    return Escalation(level, loop, levels[level - 1].channels)
