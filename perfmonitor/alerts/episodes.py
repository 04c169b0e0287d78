"""Alert episodes (``PerformanceAlert`` rows) and the state machine's instances.

Helpers shared by the engine, the self-alerts and the orphan sweep: labels and
fingerprints, copying an :class:`~perfmonitor.alerts.state.Instance` onto its
episode, saving with compare-and-set, resolving outside the state machine,
and the live message of a state change.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F

from perfmonitor import live
from perfmonitor.alerts import notify
from perfmonitor.alerts.outbox.book import Outbox
from perfmonitor.alerts.outbox.messages import summary_of
from perfmonitor.alerts.rules import top_severity
from perfmonitor.alerts.state import Instance, Observation, Policy
from perfmonitor.models import AlertRule, NotificationChannel, PerformanceAlert
from perfmonitor.models.alerts import AlertState

LabelKey = tuple[tuple[str, str], ...]
SELF_ALERT_TYPE = "notification_delivery"
# What the engine writes; acknowledgement fields belong to the ack (never overwritten here).
ENGINE_FIELDS = ["alert_id", "alert_type", "severity", "message", "threshold", "actual_value",
                 "timestamp", "resolved_at", "metadata", "labels", "state", "state_since",
                 "fired_at", "last_evaluated_at", "peak_value", "resolution_reason", "silenced",
                 "in_maintenance", "escalation_level", "escalation_loop", "next_escalation_at",
                 "notified_severity", "last_notified_at", "repeat_count", "version"]


class ConcurrentChange(Exception):
    """An episode changed under a compare-and-set write."""


def fingerprint(rule_id: Any, group: LabelKey) -> str:
    text = f"{rule_id}|" + "|".join(f"{k}={v}" for k, v in group)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def full_labels(rule: AlertRule, group: LabelKey) -> dict[str, str]:
    return {**(rule.labels or {}), **dict(group), "alertname": rule.name, "rule": rule.key}


def policy_of(rule: AlertRule) -> Policy:
    return Policy(rule.for_seconds, rule.keep_firing_for_seconds, rule.no_data_policy,
                  rule.error_policy, top_severity(rule))


def group_of(alert: PerformanceAlert) -> LabelKey:
    return tuple(sorted((alert.metadata or {}).get("group", {}).items()))


def instance_of(alert: PerformanceAlert) -> Instance:
    return Instance(state=alert.state, state_since=alert.state_since, started_at=alert.timestamp,
                    fired_at=alert.fired_at, severity=alert.severity, value=alert.actual_value,
                    threshold=alert.threshold, peak=alert.peak_value, message=alert.message)


def new_alert(rule: AlertRule, group: LabelKey, fp: str) -> PerformanceAlert:
    return PerformanceAlert(rule=rule, fingerprint=fp, alert_type=rule.key,
                            alert_id=f"{rule.key}/{fp[:12]}", metadata={"group": dict(group)})


def copy_instance(alert: PerformanceAlert, inst: Instance, obs: Observation, now: datetime,
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


def save_checked(alert: PerformanceAlert) -> None:
    """Insert, or update only if nobody changed the row since it was read (compare-and-set)."""
    if alert._state.adding:
        alert.save(force_insert=True)
        return
    fields = {name: getattr(alert, name) for name in ENGINE_FIELDS if name != "version"}
    fields["rule_id"] = alert.rule_id  # type: ignore[attr-defined]
    updated = PerformanceAlert.objects.filter(pk=alert.pk, version=alert.version).update(
        **fields, version=F("version") + 1)
    if not updated:
        raise ConcurrentChange(f"alert {alert.pk} changed during evaluation")
    alert.version += 1


def update_many(alerts: list[PerformanceAlert]) -> None:
    """Write the engine's fields of locked episodes: one statement, many parameter rows.

    (Django's ``bulk_update`` builds a CASE per field and row; for 25 fields and
    a hundred episodes that costs seconds of Python. ``executemany`` is pipelined
    by psycopg 3.)
    """
    if not alerts:
        return
    meta = PerformanceAlert._meta
    fields = [meta.get_field(name) for name in ENGINE_FIELDS]
    qn = connection.ops.quote_name
    sql = (f"UPDATE {qn(meta.db_table)} SET "
           + ", ".join(f"{qn(f.column)} = %s" for f in fields)  # type: ignore[union-attr]
           + f" WHERE {qn(meta.pk.column)} = %s")
    pk = meta.pk
    rows = [[f.get_db_prep_save(getattr(a, f.attname), connection)  # type: ignore[union-attr]
             for f in fields] + [pk.get_db_prep_save(a.pk, connection)] for a in alerts]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def resolve_alert(alert: PerformanceAlert, reason: str, now: datetime) -> None:
    """Resolve an open episode outside the state machine (orphans, self-alerts)."""
    alert.state, alert.state_since, alert.resolved_at = AlertState.RESOLVED, now, now
    alert.resolution_reason = reason
    book = Outbox.load([alert.pk])
    result = notify.plan(alert, alert.rule, ["resolved"], now, False, {}, book)
    save_checked(alert)
    channels = {c.pk: c for c in NotificationChannel.objects.filter(
        pk__in=book.notified_channel_ids(alert))}
    notify.apply(alert, [], result, now, book, channels)
    book.flush()
    publish_on_commit(alert, ["resolved"])


def publish_on_commit(alert: PerformanceAlert, transitions: list[str]) -> None:
    payload = live_payload(alert, transitions)
    transaction.on_commit(lambda: live.publish("alerts", payload, force=True))


def live_payload(alert: PerformanceAlert, transitions: list[str] | None = None) -> dict[str, Any]:
    rule = alert.rule if alert.rule_id else None  # type: ignore[attr-defined]
    return {"type": "alert_state", "id": str(alert.pk), "alert_id": alert.alert_id,
            "rule": rule.key if rule else None, "state": alert.state,
            "severity": alert.severity, "labels": alert.labels, "value": alert.actual_value,
            "message": alert.message, "acknowledged": alert.acknowledged,
            "silenced": alert.silenced, "transitions": transitions or []}
