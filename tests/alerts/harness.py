"""A small table-driven harness for alert timers, in the spirit of ``promtool test rules``.

A scenario gives input series (one value per minute), a rule, and the
expected alert state and notifications after each minute::

    Scenario(
        rule={"warning_threshold": 2000, "for_seconds": 120},
        series={"/courses/": "500 2500x3 500"},
        expect=[
            (0, "inactive", []),
            (1, "pending", []),
            (3, "firing", ["team:firing"]),
            (4, "resolved", ["team:resolved"]),
        ],
    )

Series notation: ``V`` is one minute with value V, ``VxN`` N minutes of V,
``_`` a minute without data (``_xN`` N of them). Minute *i*'s evaluation runs
at the start of minute *i + 1* (the window ends there, so it includes minute
*i*), then the clock moves through the rest of that minute and every outbox row
that falls due is delivered by the real delivery code (in-app and email
channels). "team:firing" reads "channel team got the firing notification
during that minute". ``actions`` run at the evaluation time of their minute
(before evaluating), e.g. an ack or a silence.

Every row in ``expect`` is checked; minutes without a row are not. A failure
prints the whole observed table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from perfmonitor.alerts import clock
from perfmonitor.alerts.engine import evaluate_rules
from perfmonitor.alerts.outbox.delivery import deliver
from perfmonitor.models import (
    AlertNotification,
    AlertRule,
    NotificationDelivery,
    PerformanceAlert,
)
from perfmonitor.models.notifications import DeliveryOutcome, NotificationStatus
from tests.alerts.helpers import make_channel, make_rule, origin, write_minute

_TOKEN = re.compile(r"^(?P<value>_|-?\d+(?:\.\d+)?)(?:x(?P<times>\d+))?$")


def parse_series(text: str) -> list[float | None]:
    values: list[float | None] = []
    for token in text.split():
        match = _TOKEN.match(token)
        if not match:
            raise ValueError(f"bad series token {token!r}")
        value = None if match["value"] == "_" else float(match["value"])
        values.extend([value] * int(match["times"] or 1))
    return values


@dataclass
class Step:
    minute: int
    state: str | dict[str, str]
    sent: list[str]


@dataclass
class Run:
    """What a scenario run gives the actions and the assertions."""

    rule: AlertRule
    start: datetime
    clock: clock.FrozenClock
    rows: list[Step] = field(default_factory=list)

    def alert(self) -> PerformanceAlert:
        return PerformanceAlert.objects.filter(rule=self.rule).latest("created_at")


@dataclass
class Scenario:
    rule: dict[str, Any]
    series: dict[str, str]
    expect: list[tuple[int, Any, list[str]]]
    channels: dict[str, str] = field(default_factory=lambda: {"team": "in_app"})
    rule_channels: list[str] = field(default_factory=lambda: ["team"])
    actions: dict[int, Callable[[Run], None]] = field(default_factory=dict)
    dimension: str = "GET"
    samples: int = 30


def _states(rule: AlertRule, now: datetime) -> dict[str, str]:
    """State per label set after the evaluation at ``now``: the latest episode's state if it is
    open or closed just now, else inactive."""
    latest: dict[str, PerformanceAlert] = {}
    for alert in PerformanceAlert.objects.filter(rule=rule).order_by("created_at"):
        group = ",".join(f"{k}={v}" for k, v in sorted((alert.metadata.get("group") or {})
                                                        .items()))
        latest[group] = alert
    return {group: alert.state if alert.is_open or alert.state_since == now else "inactive"
            for group, alert in latest.items()}


def _deliver_until(moment: datetime, run: Run) -> list[str]:
    """Deliver every row due up to ``moment`` in due order, advancing the clock to each."""
    sent: list[str] = []
    while True:
        row = (AlertNotification.objects.filter(status=NotificationStatus.PENDING,
                                                due_at__lte=moment)
               .order_by("due_at", "created_at").first())
        if row is None:
            break
        run.clock.set(max(run.clock(), row.due_at))
        outcome = deliver(row.pk)
        if outcome.status in ("wait", "deferred") and row.due_at >= moment:
            break
        if outcome.status == "delivered":
            log = NotificationDelivery.objects.filter(notification=row,
                                                      outcome=DeliveryOutcome.SUCCESS).get()
            sent.append(f"{log.notification.channel.name}:{row.event}")
    run.clock.set(moment)
    return sorted(sent)


def run_scenario(scenario: Scenario) -> Run:
    start = origin()
    channels = {name: make_channel(name, kind, **({"target": f"{name}@example.com"}
                                                  if kind == "email" else {}))
                for name, kind in scenario.channels.items()}
    rule = make_rule(channels=[channels[n] for n in scenario.rule_channels], **scenario.rule)
    longest = 0
    for route, text in scenario.series.items():
        values = parse_series(text)
        longest = max(longest, len(values))
        for i, value in enumerate(values):
            if value is not None:
                write_minute(rule.kind, route, scenario.dimension, start + timedelta(minutes=i),
                             value, count=scenario.samples)
    last = max([longest - 1, *(m for m, _, _ in scenario.expect)])
    frozen = clock.FrozenClock(start)
    run = Run(rule, start, frozen)
    with clock.use_clock(frozen):
        for minute in range(last + 1):
            evaluated_at = start + timedelta(minutes=minute + 1)
            frozen.set(evaluated_at)
            if minute in scenario.actions:
                scenario.actions[minute](run)
            evaluate_rules(evaluated_at, rules=[AlertRule.objects.prefetch_related("channels")
                                                .get(pk=rule.pk)])
            states = _states(rule, evaluated_at)
            sent = _deliver_until(evaluated_at + timedelta(seconds=59), run)
            grouped = bool(rule.group_by)
            state: str | dict[str, str] = states if grouped else states.get("", "inactive")
            run.rows.append(Step(minute, state, sent))
    return run


def table(rows: list[Step]) -> str:
    return "\n".join(f"  {r.minute:>3}  {r.state!s:<40} {', '.join(r.sent) or '-'}"
                     for r in rows)


def check(scenario: Scenario) -> Run:
    run = run_scenario(scenario)
    by_minute = {r.minute: r for r in run.rows}
    problems = []
    for minute, state, sent in scenario.expect:
        row = by_minute[minute]
        if row.state != state or row.sent != sorted(sent):
            problems.append(f"minute {minute}: expected {state} {sorted(sent)}, "
                            f"got {row.state} {row.sent}")
    assert not problems, "\n".join(problems) + "\nobserved:\n" + table(run.rows)
    return run
