"""Rule evaluation: once a minute, every enabled rule, every label set.

For each rule, one transaction:

1. claim (rule, minute) by inserting an ``AlertEvaluation`` row; a second
   evaluator of the same minute (two beats, a retried task) finds the claim and
   skips the rule (it waits for the first transaction on the unique index);
2. lock the rule's open episodes and advance each instance with
   :func:`perfmonitor.alerts.state.step`;
3. decide notifications (:mod:`perfmonitor.alerts.notify`) and write them to
   the outbox.

So a state change and its notifications commit together or not at all, and
Celery tasks are sent only after the commit. Metrics are read before the
transaction (read-only, shared between rules by a :class:`MetricReader`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q

from perfmonitor import live
from perfmonitor.alerts import clock, notify
from perfmonitor.alerts.metrics import LabelKey, MetricError, MetricReader, observe
from perfmonitor.alerts.outbox import enqueue
from perfmonitor.alerts.outbox.messages import summary_of
from perfmonitor.alerts.rules import group_fields, top_severity
from perfmonitor.alerts.silences import Suppressions
from perfmonitor.alerts.state import Instance, Observation, Policy, step
from perfmonitor.analytics import query
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.conf import settings
from perfmonitor.models import (
    AlertEvaluation,
    AlertRule,
    NotificationChannel,
    PerformanceAlert,
)
from perfmonitor.models.alerts import OPEN_STATES, AlertState

logger = logging.getLogger("perfmonitor.alerts")
WORKER = f"{socket.gethostname()}:{os.getpid()}"
SELF_ALERT_TYPE = "notification_delivery"


class ConcurrentChange(Exception):
    """An episode changed under the engine (should not happen while it holds the row lock)."""


@dataclass
class RunReport:
    minute: datetime
    rules: int = 0
    evaluated: int = 0
    skipped: int = 0
    errors: int = 0
    changes: int = 0
    notifications: int = 0
    seconds: float = 0.0
    details: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"minute": self.minute.isoformat(), "rules": self.rules,
                "evaluated": self.evaluated, "skipped": self.skipped, "errors": self.errors,
                "changes": self.changes, "notifications": self.notifications,
                "seconds": round(self.seconds, 4)}


def fingerprint(rule_id: Any, group: LabelKey) -> str:
    text = f"{rule_id}|" + "|".join(f"{k}={v}" for k, v in group)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def full_labels(rule: AlertRule, group: LabelKey) -> dict[str, str]:
    return {**(rule.labels or {}), **dict(group), "alertname": rule.name, "rule": rule.key}


def policy_of(rule: AlertRule) -> Policy:
    return Policy(rule.for_seconds, rule.keep_firing_for_seconds, rule.no_data_policy,
                  rule.error_policy, top_severity(rule))


def _group_of(alert: PerformanceAlert) -> LabelKey:
    return tuple(sorted((alert.metadata or {}).get("group", {}).items()))


# -- claims ---------------------------------------------------------------------------------

def claim(rule: AlertRule, minute: datetime, now: datetime) -> AlertEvaluation | None:
    """Insert the (rule, minute) claim in the current transaction; None if already claimed."""
    if connection.vendor in ("postgresql", "sqlite"):
        table = AlertEvaluation._meta.db_table
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {qn(table)} (rule_id, minute, evaluated_at, instances, changes, "
                f"error, worker) VALUES (%s, %s, %s, 0, 0, '', %s) "
                f"ON CONFLICT (rule_id, minute) DO NOTHING RETURNING id",
                [AlertEvaluation._meta.get_field("rule").get_db_prep_value(rule.pk, connection),
                 AlertEvaluation._meta.get_field("minute").get_db_prep_value(minute, connection),
                 AlertEvaluation._meta.get_field("evaluated_at").get_db_prep_value(now,
                                                                                   connection),
                 WORKER])
            row = cursor.fetchone()
        return AlertEvaluation(pk=row[0], rule=rule, minute=minute, evaluated_at=now) \
            if row else None
    try:
        with transaction.atomic():
            return AlertEvaluation.objects.create(rule=rule, minute=minute, evaluated_at=now,
                                                  worker=WORKER)
    except IntegrityError:
        return None


# -- observations ---------------------------------------------------------------------------

def instances_for(rule: AlertRule, reader: MetricReader, minute: datetime,
                  open_alerts: list[PerformanceAlert]) -> tuple[list[tuple[LabelKey,
                                                                           Observation]], str]:
    """(label set, observation) for every instance to advance, and the rule's error if any."""
    by_group = {_group_of(a): a for a in open_alerts}
    try:
        observed = observe(rule, reader, minute)
        error = ""
    except MetricError as exc:
        observed, error = {}, str(exc)
    except Exception as exc:  # a broken rule must not stop the others
        logger.exception("perfmonitor: evaluating rule %s failed", rule.key)
        observed, error = {}, f"internal error: {exc!r}"
    if error:
        targets = list(by_group) or [()]
        return [(group, Observation.error(error)) for group in targets], error
    wanted = {label for label, _ in group_fields(rule)}
    result = list(observed.items())
    for group in by_group:
        if group in observed:
            continue
        if not group and wanted:
            # the rule-level no-data / error placeholder of a grouped rule: gone once data is back
            result.append((group, Observation("gone") if observed else
                           Observation.no_data(f"no data in the last "
                                               f"{rule.window_seconds // 60} min")))
        elif {k for k, _ in group} != wanted:
            result.append((group, Observation("gone")))  # labels of an older group_by
        else:
            result.append((group, Observation.no_data("no data for these labels in the window")))
    if not result:
        result.append(((), Observation.no_data(f"no data in the last "
                                                f"{rule.window_seconds // 60} min")))
    return result, ""


def _needs_work(rule: AlertRule, items: list[tuple[LabelKey, Observation]],
                open_alerts: list[PerformanceAlert], now: datetime) -> bool:
    if open_alerts:
        return True
    policy = policy_of(rule)
    for _group, obs in items:
        if obs.status == "gone":
            continue
        if step(Instance(), obs, policy, now):
            return True
    return False


# -- one rule -------------------------------------------------------------------------------

@dataclass
class Context:
    now: datetime
    minute: datetime
    suppressions: Suppressions
    channels_by_name: dict[str, NotificationChannel]


def evaluate_rule(rule: AlertRule, items: list[tuple[LabelKey, Observation]], error: str,
                  open_alerts: list[PerformanceAlert], ctx: Context) -> tuple[str, int, int]:
    """Claim and advance one rule; returns (outcome, state changes, notifications)."""
    with transaction.atomic():
        evaluation = claim(rule, ctx.minute, ctx.now)
        if evaluation is None:
            return "skipped", 0, 0
        changes = notifications = 0
        if _needs_work(rule, items, open_alerts, ctx.now):
            AlertRule.objects.select_for_update().filter(pk=rule.pk).first()
            if AlertEvaluation.objects.filter(rule=rule, minute__gt=ctx.minute).exists():
                error = error or "superseded: a later minute was already evaluated"
            else:
                changes, notifications = _advance(rule, items, ctx)
        AlertEvaluation.objects.filter(pk=evaluation.pk).update(
            instances=len(items), changes=changes, error=error[:2000])
    return ("error" if error else "evaluated"), changes, notifications


def _advance(rule: AlertRule, items: list[tuple[LabelKey, Observation]],
             ctx: Context) -> tuple[int, int]:
    locked = {a.fingerprint: a for a in PerformanceAlert.objects.select_for_update()
              .filter(rule=rule, state__in=OPEN_STATES)}
    for alert in locked.values():
        alert.rule = rule  # the rule in hand, not one query per alert
    policy = policy_of(rule)
    rule_channels = [c for c in rule.channels.all() if c.enabled]
    changes = notifications = 0
    for group, obs in items:
        fp = fingerprint(rule.pk, group)
        alert = locked.get(fp)
        inst = _instance_of(alert) if alert is not None else Instance()
        if obs.status == "gone":
            transitions = _close_gone(inst, ctx.now) if alert is not None else []
        else:
            transitions = step(inst, obs, policy, ctx.now)
        if alert is None and not inst.is_open:
            continue
        alert = alert or _new_alert(rule, group, fp)
        labels = full_labels(rule, group)
        silence = ctx.suppressions.silence_for({**labels, "severity": inst.severity})
        window = ctx.suppressions.maintenance_for({**labels, "severity": inst.severity})
        _copy_instance(alert, inst, obs, ctx.now, labels, silence, window)
        result = notify.plan(alert, rule, transitions, ctx.now, bool(silence or window),
                             ctx.channels_by_name)
        _save(alert)
        notifications += notify.apply(alert, rule_channels, result, ctx.now)
        if transitions:
            changes += 1
            _publish_on_commit(alert, transitions)
    return changes, notifications


def _close_gone(inst: Instance, now: datetime) -> list[str]:
    inst.state, inst.state_since, inst.resolution_reason = AlertState.RESOLVED, now, "rule_changed"
    return ["resolved"]


def _instance_of(alert: PerformanceAlert) -> Instance:
    return Instance(state=alert.state, state_since=alert.state_since, started_at=alert.timestamp,
                    fired_at=alert.fired_at, severity=alert.severity, value=alert.actual_value,
                    threshold=alert.threshold, peak=alert.peak_value, message=alert.message)


def _new_alert(rule: AlertRule, group: LabelKey, fp: str) -> PerformanceAlert:
    alert = PerformanceAlert(rule=rule, fingerprint=fp, alert_type=rule.key,
                             alert_id=f"{rule.key}/{fp[:12]}", metadata={"group": dict(group)})
    alert._state.adding = True
    return alert


def _copy_instance(alert: PerformanceAlert, inst: Instance, obs: Observation, now: datetime,
                   labels: dict[str, str], silence: Any, window: Any) -> None:
    alert.state, alert.state_since = inst.state, inst.state_since
    alert.timestamp = inst.started_at or alert.timestamp or now
    alert.fired_at, alert.severity = inst.fired_at, inst.severity or "warning"
    alert.actual_value, alert.threshold, alert.peak_value = inst.value, inst.threshold, inst.peak
    alert.labels = {**labels, "severity": alert.severity}
    alert.last_evaluated_at = now
    alert.silenced, alert.in_maintenance = bool(silence), bool(window)
    meta = dict(alert.metadata or {})
    meta.update({"count": obs.count, "context": obs.context,
                 "silence": str(silence.pk) if silence else None,
                 "maintenance": window.name if window else None})
    alert.metadata = meta
    if inst.state in (AlertState.RESOLVED, AlertState.INACTIVE):
        alert.resolved_at = now
        alert.resolution_reason = inst.resolution_reason
    alert.message = inst.message if inst.state in (AlertState.NO_DATA, AlertState.ERROR) \
        else summary_of(alert)


def _save(alert: PerformanceAlert) -> None:
    if alert._state.adding:
        alert.save(force_insert=True)
        return
    fields = {f.attname: getattr(alert, f.attname) for f in PerformanceAlert._meta.concrete_fields
              if f.attname not in ("id", "version", "created_at", "acknowledged",
                                   "acknowledged_by_id", "acknowledged_at")}
    updated = PerformanceAlert.objects.filter(pk=alert.pk, version=alert.version).update(
        **fields, version=F("version") + 1)
    if not updated:
        raise ConcurrentChange(f"alert {alert.pk} changed during evaluation")
    alert.version += 1


def _publish_on_commit(alert: PerformanceAlert, transitions: list[str]) -> None:
    payload = live_payload(alert, transitions)
    transaction.on_commit(lambda: live.publish("alerts", payload, force=True))


def live_payload(alert: PerformanceAlert, transitions: list[str] | None = None) -> dict[str, Any]:
    return {"type": "alert_state", "id": str(alert.pk), "alert_id": alert.alert_id,
            "rule": alert.rule.key if alert.rule_id and alert.rule else None,
            "state": alert.state, "severity": alert.severity, "labels": alert.labels,
            "value": alert.actual_value, "message": alert.message,
            "acknowledged": alert.acknowledged, "silenced": alert.silenced,
            "transitions": transitions or []}


# -- a whole run ----------------------------------------------------------------------------

def evaluate_rules(now: datetime | None = None, *, rules: list[AlertRule] | None = None,
                   ) -> RunReport:
    """Evaluate every enabled rule for the minute of ``now`` (default: the alerting clock)."""
    started = time.perf_counter()
    now = now or clock.now()
    minute = clock.floor_minute(now)
    report = RunReport(minute=minute)
    with capture_suppressed(), query.pinned_marks():
        if rules is None:
            rules = list(AlertRule.objects.filter(enabled=True).prefetch_related("channels"))
        report.rules = len(rules)
        open_by_rule: dict[Any, list[PerformanceAlert]] = {}
        for alert in PerformanceAlert.objects.filter(rule__in=[r.pk for r in rules],
                                                     state__in=OPEN_STATES):
            open_by_rule.setdefault(alert.rule_id, []).append(alert)
        ctx = Context(now, minute, Suppressions(now),
                      {c.name: c for c in NotificationChannel.objects.filter(enabled=True)})
        reader = MetricReader()
        for rule in rules:
            open_alerts = open_by_rule.get(rule.pk, [])
            items, error = instances_for(rule, reader, minute, open_alerts)
            try:
                outcome, changes, sent = evaluate_rule(rule, items, error, open_alerts, ctx)
            except Exception as exc:  # one rule's failure must not stop the run
                logger.exception("perfmonitor: rule %s could not be applied", rule.key)
                outcome, changes, sent = "error", 0, 0
                report.details.append({"rule": rule.key, "error": repr(exc)})
            report.changes += changes
            report.notifications += sent
            if outcome == "skipped":
                report.skipped += 1
            else:
                report.evaluated += 1
                report.errors += outcome == "error"
        report.changes += close_orphans(now)
        enqueue.dispatch_overdue(now)
        if minute.minute == 0:
            prune_claims(now)
    report.seconds = time.perf_counter() - started
    return report


def close_orphans(now: datetime) -> int:
    """Resolve open episodes whose rule was disabled or deleted."""
    closed = 0
    orphans = PerformanceAlert.objects.filter(state__in=OPEN_STATES).filter(
        Q(rule__enabled=False) | (Q(rule__isnull=True) & ~Q(alert_type=SELF_ALERT_TYPE)))
    for alert_pk in orphans.values_list("pk", flat=True):
        with transaction.atomic():
            alert = PerformanceAlert.objects.select_for_update().filter(
                pk=alert_pk, state__in=OPEN_STATES).select_related("rule").first()
            if alert is None:
                continue
            reason = "rule_disabled" if alert.rule_id else "rule_deleted"
            resolve_alert(alert, reason, now)
            closed += 1
    return closed


def resolve_alert(alert: PerformanceAlert, reason: str, now: datetime) -> None:
    """Resolve an open episode outside the state machine (orphans, self-alerts)."""
    alert.state, alert.state_since, alert.resolved_at = AlertState.RESOLVED, now, now
    alert.resolution_reason = reason
    result = notify.plan(alert, alert.rule, ["resolved"], now, False, {})
    _save(alert)
    notify.apply(alert, [], result, now)
    _publish_on_commit(alert, ["resolved"])


def prune_claims(now: datetime) -> int:
    cutoff = now - timedelta(days=settings.ALERT_EVALUATION_RETENTION_DAYS)
    deleted, _ = AlertEvaluation.objects.filter(minute__lt=cutoff).delete()
    return deleted
