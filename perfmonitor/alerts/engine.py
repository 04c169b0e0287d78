"""Rule evaluation: once a minute, every enabled rule, every label set.

One run:

1. reads every rule's metric (read-only, outside any transaction; rules that
   read the same series over the same window share one query);
2. in **one transaction**: claims every (rule, minute) with one ``INSERT ...
   ON CONFLICT DO NOTHING RETURNING`` on a unique index — a second evaluator of
   the same minute (two beats, a retried task) waits for this transaction and
   then claims nothing; locks the rules that have something to do (in key order)
   and skips those a later minute already evaluated; locks their open episodes;
   advances each instance with :func:`perfmonitor.alerts.state.step`; decides
   notifications (:mod:`perfmonitor.alerts.notify`); writes episodes and outbox
   rows in bulk;
3. after the commit, sends the delivery tasks and the live updates.

So a state change and its notifications commit together or not at all.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from perfmonitor.alerts import clock, notify
from perfmonitor.alerts.episodes import (
    SELF_ALERT_TYPE,
    LabelKey,
    copy_instance,
    fingerprint,
    full_labels,
    group_of,
    instance_of,
    new_alert,
    policy_of,
    publish_on_commit,
    resolve_alert,
    update_many,
)
from perfmonitor.alerts.metrics import MetricError, MetricReader, observe
from perfmonitor.alerts.outbox import enqueue
from perfmonitor.alerts.outbox.book import Outbox
from perfmonitor.alerts.rules import group_fields
from perfmonitor.alerts.silences import Suppressions
from perfmonitor.alerts.state import Instance, Observation, step
from perfmonitor.analytics import query
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.conf import settings
from perfmonitor.models import (
    AlertEvaluation,
    AlertNotification,
    AlertRule,
    InAppNotification,
    NotificationChannel,
    PerformanceAlert,
)
from perfmonitor.models.alerts import OPEN_STATES, AlertState
from perfmonitor.models.notifications import NotificationStatus

logger = logging.getLogger("perfmonitor.alerts")
WORKER = f"{socket.gethostname()}:{os.getpid()}"
CLAIM_BATCH = 150
__all__ = ["SELF_ALERT_TYPE", "WORKER", "RunReport", "close_orphans", "evaluate_rules",
           "fingerprint", "resolve_alert"]

Items = list[tuple[LabelKey, Observation]]


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


# -- observations ---------------------------------------------------------------------------

def instances_for(rule: AlertRule, reader: MetricReader, minute: datetime,
                  open_alerts: list[PerformanceAlert]) -> tuple[Items, str]:
    """(label set, observation) for every instance to advance, and the rule's error if any."""
    by_group = {group_of(a): a for a in open_alerts}
    try:
        observed = observe(rule, reader, minute)
        error = ""
    except MetricError as exc:
        observed, error = {}, str(exc)
    except Exception as exc:  # a broken rule must not stop the others
        logger.exception("perfmonitor: evaluating rule %s failed", rule.key)
        observed, error = {}, f"internal error: {exc!r}"
    if error:
        return [(group, Observation.error(error)) for group in (list(by_group) or [()])], error
    wanted = {label for label, _ in group_fields(rule)}
    result = list(observed.items())
    quiet = Observation.no_data(f"no data in the last {rule.window_seconds // 60} min")
    for group in by_group:
        if group in observed:
            continue
        if not group and wanted:
            # the rule-level no-data / error placeholder of a grouped rule: gone once data is back
            result.append((group, Observation("gone") if observed else quiet))
        elif {k for k, _ in group} != wanted:
            result.append((group, Observation("gone")))  # labels of an older group_by
        else:
            result.append((group, Observation.no_data("no data for these labels in the window")))
    if not result:
        result.append(((), quiet))
    return result, ""


def _needs_work(rule: AlertRule, items: Items, has_open: bool, now: datetime) -> bool:
    if has_open:
        return True
    policy = policy_of(rule)
    return any(obs.status != "gone" and step(Instance(), obs, policy, now)
               for _group, obs in items)


# -- claims ---------------------------------------------------------------------------------

def claim_all(rules: list[AlertRule], minute: datetime, now: datetime,
              observed: dict[Any, tuple[Items, str]]) -> dict[Any, int]:
    """Insert the (rule, minute) claims; returns {rule id: claim id} of the rules this run owns."""
    if connection.vendor not in ("postgresql", "sqlite"):
        claims = {r.pk: _claim_one(r, minute, now, observed[r.pk]) for r in rules}
        return {pk: claim for pk, claim in claims.items() if claim is not None}
    field = AlertEvaluation._meta.get_field
    prep_rule, prep_time = field("rule").get_db_prep_value, field("minute").get_db_prep_value
    table = connection.ops.quote_name(AlertEvaluation._meta.db_table)
    owned: dict[Any, int] = {}
    by_db_id = {str(prep_rule(r.pk, connection)): r.pk for r in rules}
    for start in range(0, len(rules), CLAIM_BATCH):
        chunk = rules[start:start + CLAIM_BATCH]
        values, params = [], []
        for rule in chunk:
            items, error = observed[rule.pk]
            values.append("(%s, %s, %s, %s, 0, %s, %s)")
            params += [prep_rule(rule.pk, connection), prep_time(minute, connection),
                       prep_time(now, connection), len(items), error[:2000], WORKER]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (rule_id, minute, evaluated_at, instances, changes, error, "
                f"worker) VALUES {', '.join(values)} ON CONFLICT (rule_id, minute) DO NOTHING "
                f"RETURNING id, rule_id", params)
            owned.update((by_db_id[str(rule_id)], pk) for pk, rule_id in cursor.fetchall())
    return owned


def _claim_one(rule: AlertRule, minute: datetime, now: datetime,
               observed: tuple[Items, str]) -> int | None:
    try:
        with transaction.atomic():
            return AlertEvaluation.objects.create(
                rule=rule, minute=minute, evaluated_at=now, instances=len(observed[0]),
                error=observed[1][:2000], worker=WORKER).pk
    except IntegrityError:
        return None


# -- advancing one rule ---------------------------------------------------------------------

@dataclass
class Context:
    now: datetime
    minute: datetime
    suppressions: Suppressions
    channels_by_name: dict[str, NotificationChannel]
    channels_by_pk: dict[Any, NotificationChannel]
    book: Outbox = field(default_factory=Outbox)
    created: list[PerformanceAlert] = field(default_factory=list)
    changed: list[PerformanceAlert] = field(default_factory=list)


def _advance(rule: AlertRule, items: Items, open_alerts: dict[str, PerformanceAlert],
             ctx: Context, book: Outbox,
             ) -> tuple[int, int, list[tuple[PerformanceAlert, list[str]]]]:
    """Step every instance of ``rule``; returns (changes, notifications, new/changed episodes).

    Outbox changes go to ``book``, which the caller keeps only if the whole rule succeeded.
    """
    policy = policy_of(rule)
    rule_channels = [c for c in rule.channels.all() if c.enabled]
    changes = notifications = 0
    touched = []
    for group, obs in items:
        fp = fingerprint(rule.pk, group)
        alert = open_alerts.get(fp)
        inst = instance_of(alert) if alert is not None else Instance()
        if obs.status == "gone":
            transitions = _close_gone(inst, ctx.now) if alert is not None else []
        else:
            transitions = step(inst, obs, policy, ctx.now)
        if alert is None and not inst.is_open:
            continue
        alert = alert or new_alert(rule, group, fp)
        labels = full_labels(rule, group)
        silence = ctx.suppressions.silence_for({**labels, "severity": inst.severity})
        window = ctx.suppressions.maintenance_for({**labels, "severity": inst.severity})
        copy_instance(alert, inst, obs, ctx.now, labels, silence, window)
        result = notify.plan(alert, rule, transitions, ctx.now, bool(silence or window),
                             ctx.channels_by_name, book)
        notifications += notify.apply(alert, rule_channels, result, ctx.now, book,
                                      ctx.channels_by_pk)
        touched.append((alert, transitions))
        changes += bool(transitions)
    return changes, notifications, touched


def _close_gone(inst: Instance, now: datetime) -> list[str]:
    inst.state, inst.state_since, inst.resolution_reason = AlertState.RESOLVED, now, "rule_changed"
    return ["resolved"]


def _write(ctx: Context, touched: list[tuple[PerformanceAlert, list[str]]]) -> None:
    for alert, transitions in touched:
        if alert._state.adding:
            ctx.created.append(alert)
        else:
            alert.version += 1  # the row is locked: no one else can have moved it
            ctx.changed.append(alert)
        if transitions:
            publish_on_commit(alert, transitions)
    if ctx.created:
        PerformanceAlert.objects.bulk_create(ctx.created, batch_size=500)
        for alert in ctx.created:
            alert._state.adding = False
    update_many(ctx.changed)
    ctx.book.flush()


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
        rules = sorted(rules, key=lambda r: str(r.pk))
        report.rules = len(rules)
        snapshot: dict[Any, list[PerformanceAlert]] = {}
        for alert in PerformanceAlert.objects.filter(rule__in=[r.pk for r in rules],
                                                     state__in=OPEN_STATES):
            snapshot.setdefault(alert.rule_id, []).append(alert)  # type: ignore[attr-defined]
        reader = MetricReader()
        reader.plan(rules, minute)
        observed = {r.pk: instances_for(r, reader, minute, snapshot.get(r.pk, []))
                    for r in rules}
        channels = {c.pk: c for c in NotificationChannel.objects.all()}
        ctx = Context(now, minute, Suppressions(now),
                      {c.name: c for c in channels.values() if c.enabled}, channels)
        with transaction.atomic():
            owned = claim_all(rules, minute, now, observed)
            report.evaluated, report.skipped = len(owned), len(rules) - len(owned)
            report.errors = sum(1 for r in rules if r.pk in owned and observed[r.pk][1])
            work = [r for r in rules if r.pk in owned and
                    _needs_work(r, observed[r.pk][0], bool(snapshot.get(r.pk)), now)]
            if work:
                _evaluate_locked(work, observed, ctx, report, owned)
    with capture_suppressed():
        report.changes += close_orphans(now)
        enqueue.dispatch_overdue(now)
        if minute.minute == 0:
            prune_claims(now)
    report.seconds = time.perf_counter() - started
    return report


def _evaluate_locked(work: list[AlertRule], observed: dict[Any, tuple[Items, str]],
                     ctx: Context, report: RunReport, claims: dict[Any, int]) -> None:
    ids = [r.pk for r in work]
    # Serializes evaluators of different minutes of the same rules (key order: no deadlock).
    list(AlertRule.objects.select_for_update().filter(pk__in=ids).order_by("pk")
         .values_list("pk", flat=True))
    later = set(AlertEvaluation.objects.filter(rule_id__in=ids, minute__gt=ctx.minute)
                .values_list("rule_id", flat=True))
    if later:
        AlertEvaluation.objects.filter(rule_id__in=later, minute=ctx.minute).update(
            error="superseded: a later minute was already evaluated")
    work = [r for r in work if r.pk not in later]
    locked: dict[Any, dict[str, PerformanceAlert]] = {}
    rules = {r.pk: r for r in work}
    for alert in PerformanceAlert.objects.select_for_update().filter(
            rule__in=list(rules), state__in=OPEN_STATES):
        alert.rule = rules[alert.rule_id]  # type: ignore[attr-defined]
        locked.setdefault(alert.rule_id, {})[alert.fingerprint] = alert  # type: ignore
    ctx.book = Outbox.load(a.pk for alerts in locked.values() for a in alerts.values())
    touched: list[tuple[PerformanceAlert, list[str]]] = []
    changed_rules: dict[Any, int] = {}
    for rule in work:
        mine = locked.get(rule.pk, {})
        book = ctx.book.slice(a.pk for a in mine.values())
        try:
            changes, sent, done = _advance(rule, observed[rule.pk][0], mine, ctx, book)
        except Exception as exc:  # one rule's bug must not cost the others their minute
            logger.exception("perfmonitor: rule %s could not be applied", rule.key)
            report.errors += 1
            report.details.append({"rule": rule.key, "error": repr(exc)})
            continue
        ctx.book.absorb(book)
        touched += done
        report.changes += changes
        report.notifications += sent
        if changes:
            changed_rules[rule.pk] = changes
    _write(ctx, touched)
    AlertEvaluation.objects.bulk_update(
        [AlertEvaluation(pk=claims[rule_id], changes=n) for rule_id, n in changed_rules.items()],
        ["changes"], batch_size=500)


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
            resolve_alert(alert, "rule_disabled" if alert.rule_id else "rule_deleted", now)
            closed += 1
    return closed


def prune_claims(now: datetime) -> int:
    """Hourly: evaluation claims and settled notifications past their retention."""
    cutoff = now - timedelta(days=settings.ALERT_EVALUATION_RETENTION_DAYS)
    deleted, _ = AlertEvaluation.objects.filter(minute__lt=cutoff).delete()
    old = now - timedelta(days=settings.ALERT_NOTIFICATION_RETENTION_DAYS)
    settled = AlertNotification.objects.filter(created_at__lt=old).exclude(
        status__in=[NotificationStatus.PENDING, NotificationStatus.SENDING])
    deleted += settled.delete()[0]
    deleted += InAppNotification.objects.filter(created_at__lt=old).delete()[0]
    return deleted
