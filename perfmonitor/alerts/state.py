"""The alert state machine of one instance (rule, label set), as a pure function.

::

    inactive ──breach──▶ pending ──breach for `for`──▶ firing ◀──breach── recovering
        ▲                  │ (for = 0: straight to firing)   │ clear         │ clear for
        └──── not breaching┘                                 ▼ (kff > 0)     │ keep_firing_for
                                                   recovering / resolved ◀───┘

``breach`` means the value is past the warning or critical threshold; ``clear``
means it is back past the resolve threshold (hysteresis: between the two the
alert holds its state). No data and evaluation errors follow the rule's
policy: treat as OK, as breaching, keep the state, or enter the ``no_data`` /
``error`` state. The engine persists instances as ``PerformanceAlert`` rows;
preview runs the same function over past data in memory.
"""

from __future__ import annotations

import operator as op
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from perfmonitor.models.alerts import AlertState, ErrorPolicy, NoDataPolicy, Severity

COMPARE = {">": op.gt, ">=": op.ge, "<": op.lt, "<=": op.le}
SEVERITY_RANK = {"": 0, Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True)
class Thresholds:
    operator: str
    warning: float | None
    critical: float | None
    resolve: float | None = None

    def severity(self, value: float) -> str | None:
        compare = COMPARE[self.operator]
        if self.critical is not None and compare(value, self.critical):
            return Severity.CRITICAL
        if self.warning is not None and compare(value, self.warning):
            return Severity.WARNING
        return None

    @property
    def breach(self) -> float:
        """The threshold whose crossing starts an alert (the milder one)."""
        present = [t for t in (self.warning, self.critical) if t is not None]
        return min(present) if self.operator in (">", ">=") else max(present)

    def is_clear(self, value: float) -> bool:
        resolve = self.breach if self.resolve is None else self.resolve
        return not COMPARE[self.operator](value, resolve)

    def for_severity(self, severity: str | None) -> float | None:
        if severity == Severity.CRITICAL:
            return self.critical
        return self.warning if self.warning is not None else self.critical


@dataclass(frozen=True)
class Observation:
    """What the metric said for one label set at one evaluation."""

    status: str  # "value", "no_data" or "error"
    value: float | None = None
    count: int = 0
    thresholds: Thresholds | None = None
    message: str = ""
    context: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def no_data(cls, message: str = "no data") -> Observation:
        return cls("no_data", message=message)

    @classmethod
    def error(cls, message: str) -> Observation:
        return cls("error", message=message)


@dataclass(frozen=True)
class Policy:
    for_seconds: int = 0
    keep_firing_for_seconds: int = 0
    no_data: str = NoDataPolicy.OK
    error: str = ErrorPolicy.ERROR
    top_severity: str = Severity.WARNING


@dataclass
class Instance:
    """The state of one (rule, label set); INACTIVE when it has no open episode."""

    state: str = AlertState.INACTIVE
    state_since: datetime | None = None
    started_at: datetime | None = None
    fired_at: datetime | None = None
    severity: str = ""
    value: float | None = None
    threshold: float | None = None
    peak: float | None = None
    message: str = ""
    resolution_reason: str = ""

    @property
    def is_open(self) -> bool:
        return self.state not in (AlertState.INACTIVE, AlertState.RESOLVED)


def _classify(obs: Observation, policy: Policy) -> tuple[str, str | None, bool]:
    """(what to do, severity if breaching, clear) after applying the no-data/error policy."""
    if obs.status == "value" and obs.value is not None and obs.thresholds is not None:
        severity = obs.thresholds.severity(obs.value)
        return "value", severity, severity is None and obs.thresholds.is_clear(obs.value)
    choice = policy.no_data if obs.status == "no_data" else policy.error
    if choice == "keep_state":
        return "keep", None, False
    if choice == "ok":
        return "value", None, True
    if choice == "alerting":
        return "value", policy.top_severity, False
    return obs.status, None, False  # enter the no_data / error state


def _enter(inst: Instance, state: str, now: datetime) -> None:
    inst.state = state
    inst.state_since = now


def _note_value(inst: Instance, obs: Observation, severity: str | None) -> None:
    if obs.value is None:
        return
    inst.value = obs.value
    if obs.thresholds is not None:
        above = obs.thresholds.operator in (">", ">=")
        if inst.peak is None or (obs.value > inst.peak if above else obs.value < inst.peak):
            inst.peak = obs.value
        if severity:
            inst.threshold = obs.thresholds.for_severity(severity)


def step(inst: Instance, obs: Observation, policy: Policy, now: datetime) -> list[str]:
    """Advance ``inst`` to ``now`` given ``obs``; return what happened, in order.

    Transition names: opened, pending, firing, severity_up, recovering, refiring,
    resolved, cleared, no_data, error.
    """
    action, severity, clear = _classify(obs, policy)
    if action == "keep":
        return []
    if obs.message:
        inst.message = obs.message
    if action in ("no_data", "error"):
        return _to_unknown(inst, action, obs.message, now)
    _note_value(inst, obs, severity)
    breaching = severity is not None
    state = inst.state
    if state in (AlertState.INACTIVE, AlertState.RESOLVED):
        if not breaching:
            return []
        _reset(inst, obs.message, now)
        _note_value(inst, obs, severity)
        inst.severity = severity or ""
        if policy.for_seconds <= 0:
            _fire(inst, now)
            return ["opened", "firing"]
        _enter(inst, AlertState.PENDING, now)
        return ["opened", "pending"]
    if state == AlertState.PENDING:
        if not breaching:
            _close(inst, AlertState.INACTIVE, "cleared_while_pending", now)
            return ["cleared"]
        inst.severity = severity or inst.severity
        if (now - (inst.state_since or now)).total_seconds() >= policy.for_seconds:
            _fire(inst, now)
            return ["firing"]
        return []
    if state == AlertState.FIRING:
        if breaching:
            return _raise_severity(inst, severity or "")
        if not clear:
            return []  # hysteresis: between the resolve and breach thresholds
        if policy.keep_firing_for_seconds <= 0:
            _close(inst, AlertState.RESOLVED, "recovered", now)
            return ["resolved"]
        _enter(inst, AlertState.RECOVERING, now)
        return ["recovering"]
    if state == AlertState.RECOVERING:
        if breaching:
            _enter(inst, AlertState.FIRING, now)
            return ["refiring", *_raise_severity(inst, severity or "")]
        elapsed = (now - (inst.state_since or now)).total_seconds()
        if clear and elapsed >= policy.keep_firing_for_seconds:
            _close(inst, AlertState.RESOLVED, "recovered", now)
            return ["resolved"]
        return []
    # no_data / error, and data is back
    if breaching or (not clear and inst.fired_at is not None):
        if inst.fired_at is not None:
            _enter(inst, AlertState.FIRING, now)
            inst.severity = severity or inst.severity
            return ["refiring"]
        inst.severity = severity or ""
        if policy.for_seconds <= 0:
            _fire(inst, now)
            return ["firing"]
        _enter(inst, AlertState.PENDING, now)
        return ["pending"]
    _close(inst, AlertState.RESOLVED, "data_returned", now)
    return ["resolved"]


def _fire(inst: Instance, now: datetime) -> None:
    _enter(inst, AlertState.FIRING, now)
    inst.fired_at = now


def _raise_severity(inst: Instance, severity: str) -> list[str]:
    if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(inst.severity, 0):
        inst.severity = severity
        return ["severity_up"]
    inst.severity = severity or inst.severity
    return []


def _close(inst: Instance, state: str, reason: str, now: datetime) -> None:
    _enter(inst, state, now)
    inst.resolution_reason = reason


def _reset(inst: Instance, message: str, now: datetime) -> None:
    """Start a fresh episode in ``inst``."""
    fresh = Instance(started_at=now, message=message)
    for name in fresh.__dataclass_fields__:
        setattr(inst, name, getattr(fresh, name))


def _to_unknown(inst: Instance, target: str, message: str, now: datetime) -> list[str]:
    if inst.state == target:
        return []
    opened = not inst.is_open
    if opened:
        _reset(inst, message, now)
        inst.severity = Severity.WARNING
    elif not inst.severity:
        inst.severity = Severity.WARNING
    _enter(inst, target, now)
    return ["opened", target] if opened else [target]
