"""Preview: what a rule would have done over past data, without writing anything.

The state machine is the engine's own (:func:`perfmonitor.alerts.state.step`),
run in memory. Values come from one of two paths:

* series rules with static thresholds read the minute rollups of the range
  once and slide the rule's window over them (exact, fast);
* derived metrics (score, journeys) and dynamic thresholds call the engine's
  :func:`perfmonitor.alerts.metrics.observe` at each step (exact, slower, so
  the step grows to keep at most ``MAX_SLOW_STEPS`` evaluations).

Timers are as precise as the step (one minute unless the range is long).
Notification counts are an estimate per channel: first message (if the
episode outlived group wait), repeats, resolved; silences, acks and
escalation are not simulated.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from perfmonitor.alerts import clock
from perfmonitor.alerts.metrics import (
    LabelKey,
    MetricError,
    MetricReader,
    _pattern,
    aggregate,
    observe,
)
from perfmonitor.alerts.rules import group_fields, timing
from perfmonitor.alerts.state import Instance, Observation, Thresholds, step
from perfmonitor.analytics import query
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.conf import settings
from perfmonitor.models import AlertRule, MetricRollup
from perfmonitor.models.alerts import AlertState, MetricSource, ThresholdMode

MAX_RANGE = timedelta(days=7)
MAX_FAST_WORK = 120_000  # evaluations x window minutes merged in the fast path
MAX_SLOW_STEPS = 96
MAX_SERIES = 10
MAX_EPISODES = 200


class PreviewError(ValueError):
    """A preview that cannot run; the message says why."""


def _choose_step(rule: AlertRule, span: timedelta, fast: bool, step: int | None) -> int:
    minutes = max(1, int(span.total_seconds() // 60))
    if step:
        wanted = max(60, int(step) // 60 * 60)
    elif fast:
        per_eval = max(1, rule.window_seconds // 60)
        wanted = 60 * max(1, math.ceil(minutes * per_eval / MAX_FAST_WORK))
    else:
        wanted = 60 * max(1, math.ceil(minutes / MAX_SLOW_STEPS))
    return wanted


def _minute_stats(rule: AlertRule, start: datetime, end: datetime,
                  ) -> dict[LabelKey, dict[datetime, query.SeriesStats]]:
    """Per label set, per minute: merged stats of the rule's series from minute rollups."""
    name_exact, name_glob = _pattern(rule.series_name)
    dim_exact, dim_glob = _pattern(rule.series_dimension)
    rows = MetricRollup.objects.filter(kind=rule.kind, resolution=MetricRollup.MINUTE,
                                       bucket_start__gte=start, bucket_start__lt=end)
    rows = rows.exclude(name=query.ALL).exclude(dimension=query.ALL)
    if name_exact is not None:
        rows = rows.filter(name=name_exact)
    if dim_exact is not None:
        rows = rows.filter(dimension=dim_exact)
    grouping = group_fields(rule)
    result: dict[LabelKey, dict[datetime, query.SeriesStats]] = {}
    for name, dimension, bucket, count, total, errors, low, high, blob in rows.values_list(
            "name", "dimension", "bucket_start", "count", "sum", "errors", "min", "max",
            "sketch").iterator(chunk_size=5000):
        if name_glob and not fnmatchcase(name, name_glob):
            continue
        if dim_glob and not fnmatchcase(dimension, dim_glob):
            continue
        values = {"name": name, "dimension": dimension}
        labels = tuple(sorted((label, values[f]) for label, f in grouping))
        minutes = result.setdefault(labels, {})
        entry = minutes.get(bucket)
        if entry is None:
            entry = minutes[bucket] = query.SeriesStats()
        entry.add_row(count, total, errors, low, high, blob)
    return result


def _fast_observations(rule: AlertRule, times: list[datetime],
                       ) -> list[dict[LabelKey, Observation]]:
    window = timedelta(seconds=rule.window_seconds)
    per_labels = _minute_stats(rule, times[0] - window, times[-1])
    thresholds = Thresholds(rule.operator, rule.warning_threshold, rule.critical_threshold,
                            rule.resolve_threshold)
    result = []
    for moment in times:
        span = query.Window(moment - window, moment)
        observed: dict[LabelKey, Observation] = {}
        for labels, minutes in per_labels.items():
            merged = query.SeriesStats()
            cursor = span.start
            while cursor < span.end:
                found = minutes.get(cursor)
                if found is not None:
                    merged.merge(found)
                cursor += timedelta(minutes=1)
            if not merged.count:
                continue
            value = aggregate(merged, rule.aggregation, span)
            if value is None or merged.count < rule.min_samples:
                observed[labels] = Observation.no_data(f"{merged.count} sample(s)")
            else:
                observed[labels] = Observation("value", value, merged.count, thresholds)
        result.append(observed)
    return result


def _slow_observations(rule: AlertRule, times: list[datetime],
                       ) -> list[dict[LabelKey, Observation]]:
    result = []
    for moment in times:
        try:
            result.append(observe(rule, MetricReader(), moment))
        except MetricError as exc:
            result.append({(): Observation.error(str(exc))})
    return result


def _channel_count(rule: AlertRule, channels: int | None) -> int:
    if channels is not None:
        return channels
    return rule.channels.count() if rule.pk and not rule._state.adding else 1


def preview_rule(rule: AlertRule, start: datetime | None = None, end: datetime | None = None,
                 *, step_seconds: int | None = None, channels: int | None = None,
                 ) -> dict[str, Any]:
    """Evaluate ``rule`` at every step of [start, end) over stored rollups; writes nothing."""
    end = clock.floor_minute(end or clock.now())
    start = clock.floor_minute(start or end - timedelta(days=1))
    if end <= start:
        raise PreviewError("The preview must end after it starts.")
    if end - start > MAX_RANGE:
        raise PreviewError("Preview at most 7 days at a time.")
    horizon = clock.now() - timedelta(days=settings.MINUTE_ROLLUP_RETENTION_DAYS)
    fast = (rule.source == MetricSource.SERIES and rule.threshold_mode == ThresholdMode.STATIC
            and start - timedelta(seconds=rule.window_seconds) >= horizon)
    step_size = _choose_step(rule, end - start, fast, step_seconds)
    times = [start + timedelta(seconds=step_size * (i + 1))
             for i in range(int((end - start).total_seconds() // step_size))]
    with capture_suppressed(), query.pinned_marks():
        observations = _fast_observations(rule, times) if fast else \
            _slow_observations(rule, times)
    return _simulate(rule, times, observations, step_size, fast,
                     _channel_count(rule, channels), start, end)


def _simulate(rule: AlertRule, times: list[datetime],
              observations: list[dict[LabelKey, Observation]], step_size: int, fast: bool,
              n_channels: int, start: datetime, end: datetime) -> dict[str, Any]:
    from perfmonitor.alerts.episodes import policy_of

    policy = policy_of(rule)
    instances: dict[LabelKey, Instance] = {}
    episodes: list[dict[str, Any]] = []
    current: dict[LabelKey, dict[str, Any]] = {}
    points: dict[LabelKey, list[list[Any]]] = {}
    for moment, observed in zip(times, observations, strict=True):
        items = dict(observed)
        for labels, inst in instances.items():
            if inst.is_open and labels not in items:
                items[labels] = Observation.no_data("no data for these labels")
        if not items:
            items[()] = Observation.no_data("no data")
        for labels, obs in items.items():
            inst = instances.setdefault(labels, Instance())
            transitions = step(inst, obs, policy, moment)
            _track(labels, inst, transitions, moment, current, episodes)
            shown = str(inst.state) if inst.is_open or transitions else AlertState.INACTIVE.value
            points.setdefault(labels, []).append([moment.isoformat(), obs.value, shown])
    for episode in current.values():
        episode["open_at_end"] = True
    return _report(rule, start, end, step_size, fast, len(times), episodes, points, n_channels)


def _track(labels: LabelKey, inst: Instance, transitions: list[str], moment: datetime,
           current: dict[LabelKey, dict[str, Any]], episodes: list[dict[str, Any]]) -> None:
    if "opened" in transitions:
        current[labels] = {"labels": dict(labels), "started_at": moment, "fired_at": None,
                           "resolved_at": None, "peak": inst.value, "severity": inst.severity,
                           "state": inst.state, "open_at_end": False}
        episodes.append(current[labels])
    episode = current.get(labels)
    if episode is None:
        return
    if inst.fired_at and not episode["fired_at"]:
        episode["fired_at"] = inst.fired_at
    episode["peak"], episode["state"] = inst.peak if inst.peak is not None else episode["peak"], \
        inst.state
    if inst.severity == "critical":
        episode["severity"] = "critical"
    if not inst.is_open:
        episode["resolved_at"] = moment
        del current[labels]


def _notifications(rule: AlertRule, episode: dict[str, Any], end: datetime) -> int:
    if not episode["fired_at"]:
        return 0
    t = timing(rule)
    until = episode["resolved_at"] or end
    lasted = (until - episode["fired_at"]).total_seconds()
    if episode["resolved_at"] and lasted < t.group_wait:
        return 0
    repeats = max(0, int((lasted - t.group_wait) // max(t.repeat_interval, 60)))
    resolved = 1 if episode["resolved_at"] and rule.send_resolved else 0
    return 1 + repeats + resolved


def _report(rule: AlertRule, start: datetime, end: datetime, step_size: int, fast: bool,
            evaluations: int, episodes: list[dict[str, Any]],
            points: dict[LabelKey, list[list[Any]]], n_channels: int) -> dict[str, Any]:
    fired = [e for e in episodes if e["fired_at"]]
    firing_seconds = sum(((e["resolved_at"] or end) - e["fired_at"]).total_seconds()
                         for e in fired)
    notifications = sum(_notifications(rule, e, end) for e in episodes) * n_channels
    ranked = sorted(points, key=lambda labels: (
        -sum(1 for e in fired if e["labels"] == dict(labels)), str(labels)))[:MAX_SERIES]
    out_episodes = [{**e, "started_at": e["started_at"].isoformat(),
                     "fired_at": e["fired_at"].isoformat() if e["fired_at"] else None,
                     "resolved_at": e["resolved_at"].isoformat() if e["resolved_at"] else None,
                     "duration_seconds": ((e["resolved_at"] or end) - (e["fired_at"] or
                                          e["started_at"])).total_seconds()}
                    for e in episodes[:MAX_EPISODES]]
    return {
        "rule": rule.name, "start": start.isoformat(), "end": end.isoformat(),
        "step_seconds": step_size, "mode": "minute rollups" if fast else "engine per step",
        "evaluations": evaluations, "label_sets": len(points),
        "summary": {"episodes": len(episodes), "fired": len(fired),
                    "pending_only": len(episodes) - len(fired),
                    "firing_seconds": firing_seconds,
                    "would_notify": notifications,
                    "states_seen": sorted({p[2] for series in points.values() for p in series
                                           if p[2] != AlertState.INACTIVE})},
        "episodes": out_episodes,
        "series": [{"labels": dict(labels), "points": points[labels]} for labels in ranked],
    }
