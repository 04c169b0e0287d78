"""Funnel analysis of one journey type over a window.

The cohort is the journeys that *started* inside the window. Counts by status
and the reasons are database aggregates over the ``(journey_type,
start_time)`` index. Funnels need each journey's step sequence, so the newest
``JOURNEY_ANALYSIS_MAX_ROWS`` rows of the cohort are read (only the columns
needed); when the cohort is larger the result says it is a sample.

Definitions (the numbers a test can recompute by hand):

* **Ended** journeys are completed + abandoned + failed. Journeys still in
  progress are counted but kept out of rates, funnel, durations and Apdex.
* **Completion / abandonment / failure rate** = that status / ended.
* **Funnel**: a journey *reached* step *i* when the furthest step it recorded
  has index >= *i* (skipping a step still passes it); a completed journey has
  passed every step. Overall conversion = reached / ended; step conversion =
  reached(i) / reached(i-1), and reached(0) / ended for the first step.
* **Step time**: the step's ``duration_ms`` (time since the previous step, or
  since the start), first visit only. Quantiles interpolate linearly between
  the closest ranks (numpy's default). A step's target is its own, else an
  equal share of the journey's target.
* **End to end**: ``duration`` of completed journeys.
* **Bottleneck**: the step with the lowest step conversion when any step
  loses journeys; with no losses, the step whose p75 is furthest over its
  target (if any is over). Ties go to the slower step, then the earlier one.
* **Critical path**: the step sequence most completed journeys followed, with
  each step's median time and share of the time; ``critical_steps`` are the
  slowest steps that together take at least 80 % of it.
* **Apdex** with T = the journey's target: completed within T satisfied,
  within 4T tolerating, slower completions, failures and abandonments
  frustrated; score = (satisfied + tolerating / 2) / ended.
* **Trend**: the same summary for the previous window of equal length.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.db.models import Count

from perfmonitor.analytics.query import Window
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.conf import settings
from perfmonitor.journeys.definitions import JourneyDefinition, JourneyError, get_definition
from perfmonitor.journeys.metrics import as_window
from perfmonitor.models import UserJourney
from perfmonitor.models.journeys import JourneyStatus

BREAKDOWN_KEY_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MAX_BREAKDOWN_VALUES = 20
TOP_REASONS = 10
CRITICAL_SHARE = 0.8
ENDED = {JourneyStatus.COMPLETED, JourneyStatus.ABANDONED, JourneyStatus.FAILED}


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


class _Journey:
    """What the analysis needs of one row."""

    __slots__ = ("status", "duration", "furthest", "first_visits", "sequence", "group")

    def __init__(self, definition: JourneyDefinition, status: str, duration: int | None,
                 steps: Any, group: Any) -> None:
        self.status = status
        self.duration = duration
        self.first_visits: dict[str, float] = {}
        self.sequence: list[str] = []
        furthest = -1
        for entry in steps if isinstance(steps, list) else []:
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not definition.has_step(name):
                continue
            furthest = max(furthest, definition.step_index(name))
            if name not in self.first_visits:
                self.first_visits[name] = float(entry.get("duration_ms") or 0.0)
                self.sequence.append(name)
        if status == JourneyStatus.COMPLETED:
            furthest = len(definition.steps) - 1
        self.furthest = furthest
        self.group = "(none)" if group is None else str(group)


def _cohort(definition: JourneyDefinition, window: Window,
            breakdown_key: str | None) -> tuple[list[_Journey], bool]:
    limit = settings.JOURNEY_ANALYSIS_MAX_ROWS
    fields = ["status", "duration", "steps"]
    if breakdown_key:
        fields.append(f"metadata__{breakdown_key}")
    query = (UserJourney.objects
             .filter(journey_type=definition.key, start_time__gte=window.start,
                     start_time__lt=window.end)
             .order_by("-start_time").values_list(*fields))
    with capture_suppressed():
        rows = list(query[:limit + 1])
    truncated = len(rows) > limit
    journeys = [_Journey(definition, r[0], r[1], r[2], r[3] if breakdown_key else None)
                for r in rows[:limit]]
    return journeys, truncated


def _status_counts(definition: JourneyDefinition, window: Window) -> dict[str, int]:
    with capture_suppressed():
        found = dict(UserJourney.objects
                     .filter(journey_type=definition.key, start_time__gte=window.start,
                             start_time__lt=window.end)
                     .values_list("status").annotate(n=Count("pk")).order_by())
    counts = {status.value: found.get(status.value, 0) for status in JourneyStatus}
    counts["started"] = sum(counts.values())
    counts["ended"] = sum(counts[s] for s in ENDED)
    return counts


def _reasons(definition: JourneyDefinition, window: Window) -> dict[str, list[dict[str, Any]]]:
    with capture_suppressed():
        rows = list(UserJourney.objects
                    .filter(journey_type=definition.key, start_time__gte=window.start,
                            start_time__lt=window.end,
                            status__in=[JourneyStatus.ABANDONED, JourneyStatus.FAILED])
                    .values_list("status", "abandonment_reason").annotate(n=Count("pk"))
                    .order_by("-n"))
    out: dict[str, list[dict[str, Any]]] = {"abandoned": [], "failed": []}
    totals: Counter[str] = Counter()
    for status, _reason, n in rows:
        totals[status] += n
    for status, reason, n in rows:
        if len(out[status]) < TOP_REASONS:
            out[status].append({"reason": reason or "(none)", "count": n,
                                "share": n / totals[status]})
    return out


def _funnel(definition: JourneyDefinition, ended: list[_Journey]) -> list[dict[str, Any]]:
    stages = []
    previous = len(ended)
    for index, step in enumerate(definition.steps):
        reached = sum(1 for j in ended if j.furthest >= index)
        times = [j.first_visits[step.name] for j in ended if step.name in j.first_visits]
        target = definition.step_target_ms(step.name)
        p75 = quantile(times, 0.75)
        stages.append({
            "name": step.name, "label": step.label, "reached": reached,
            "dropped": previous - reached,
            "overall_conversion": _ratio(reached, len(ended)),
            "step_conversion": _ratio(reached, previous),
            "timed": len(times), "median_ms": quantile(times, 0.5), "p75_ms": p75,
            "target_ms": target, "over_target": _ratio(p75, target) if p75 is not None else None,
        })
        previous = reached
    return stages


def _bottleneck(stages: list[dict[str, Any]]) -> dict[str, Any] | None:
    def slowness(stage: dict[str, Any]) -> float:
        return stage["over_target"] or 0.0

    converting = [s for s in stages if s["step_conversion"] is not None]
    lossy = [s for s in converting if s["step_conversion"] < 1.0]
    if lossy:
        worst = min(lossy, key=lambda s: (s["step_conversion"], -slowness(s)))
        reason = "conversion"
    else:
        slow = [s for s in stages if slowness(s) > 1.0]
        if not slow:
            return None
        worst = max(slow, key=slowness)
        reason = "slow"
    return {"step": worst["name"], "reason": reason, "step_conversion": worst["step_conversion"],
            "dropped": worst["dropped"], "p75_ms": worst["p75_ms"],
            "target_ms": worst["target_ms"], "over_target": worst["over_target"]}


def _critical_path(completed: list[_Journey]) -> dict[str, Any] | None:
    paths = Counter(tuple(j.sequence) for j in completed if j.sequence)
    if not paths:
        return None
    sequence, n = max(paths.items(), key=lambda item: (item[1], len(item[0])))
    followers = [j for j in completed if tuple(j.sequence) == sequence]
    medians = {name: quantile([j.first_visits[name] for j in followers], 0.5) or 0.0
               for name in sequence}
    total_ms = sum(medians.values())
    steps = [{"name": name, "median_ms": medians[name],
              "share_of_time": _ratio(medians[name], total_ms)} for name in sequence]
    critical, covered = [], 0.0
    for name in sorted(sequence, key=lambda s: -medians[s]):
        if total_ms and covered >= CRITICAL_SHARE * total_ms:
            break
        critical.append(name)
        covered += medians[name]
    return {"steps": steps, "journeys": n, "share_of_completed": n / len(completed),
            "median_total_ms": total_ms, "critical_steps": critical}


def _apdex(ended: Iterable[_Journey], t_ms: float) -> dict[str, Any]:
    satisfied = tolerating = frustrated = 0
    for j in ended:
        if j.status == JourneyStatus.COMPLETED and j.duration is not None:
            if j.duration <= t_ms:
                satisfied += 1
                continue
            if j.duration <= 4 * t_ms:
                tolerating += 1
                continue
        frustrated += 1
    n = satisfied + tolerating + frustrated
    return {"score": _ratio(satisfied + tolerating / 2, n), "t_ms": t_ms,
            "satisfied": satisfied, "tolerating": tolerating, "frustrated": frustrated}


def _durations(completed: list[_Journey], target_ms: float) -> dict[str, Any]:
    values = [float(j.duration) for j in completed if j.duration is not None]
    p75 = quantile(values, 0.75)
    return {"count": len(values), "median_ms": quantile(values, 0.5), "p75_ms": p75,
            "target_ms": target_ms, "over_target": _ratio(p75, target_ms) if p75 else None}


def _summary(definition: JourneyDefinition, journeys: list[_Journey]) -> dict[str, Any]:
    ended = [j for j in journeys if j.status in ENDED]
    completed = [j for j in ended if j.status == JourneyStatus.COMPLETED]
    return {
        "started": len(journeys), "ended": len(ended), "completed": len(completed),
        "completion_rate": _ratio(len(completed), len(ended)),
        "p75_duration_ms": _durations(completed, definition.target_ms)["p75_ms"],
        "apdex": _apdex(ended, definition.target_ms)["score"],
    }


def _breakdown(definition: JourneyDefinition, journeys: list[_Journey],
               key: str) -> dict[str, Any]:
    groups: dict[str, list[_Journey]] = defaultdict(list)
    for j in journeys:
        groups[j.group].append(j)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    if len(ordered) > MAX_BREAKDOWN_VALUES:
        rest = [j for _, members in ordered[MAX_BREAKDOWN_VALUES - 1:] for j in members]
        ordered = [*ordered[:MAX_BREAKDOWN_VALUES - 1], ("(other)", rest)]
    return {"key": key, "values": [{"value": value, **_summary(definition, members)}
                                   for value, members in ordered]}


def _change(current: float | None, previous: float | None) -> dict[str, Any]:
    delta = None if current is None or previous is None else current - previous
    return {"current": current, "previous": previous, "change": delta}


def analyze_journey(journey_type: str, window: Window | timedelta,
                    breakdown_key: str | None = None) -> dict[str, Any]:
    """Everything the journey page shows for one type over one window (see module doc)."""
    definition = get_definition(journey_type)
    if breakdown_key is not None and not BREAKDOWN_KEY_RE.match(breakdown_key):
        raise JourneyError(f"Breakdown key must be 1-64 letters, digits or '_', "
                           f"not {breakdown_key!r}.")
    window = as_window(window)
    counts = _status_counts(definition, window)
    journeys, truncated = _cohort(definition, window, breakdown_key)
    ended = [j for j in journeys if j.status in ENDED]
    completed = [j for j in ended if j.status == JourneyStatus.COMPLETED]
    stages = _funnel(definition, ended)
    previous_window = window.previous()
    previous, _ = _cohort(definition, previous_window, None)
    now_summary, then_summary = _summary(definition, journeys), _summary(definition, previous)
    return {
        "journey": definition.as_dict(),
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "counts": counts,
        "rates": {
            "completion_rate": _ratio(counts["completed"], counts["ended"]),
            "abandonment_rate": _ratio(counts["abandoned"], counts["ended"]),
            "failure_rate": _ratio(counts["failed"], counts["ended"]),
        },
        "reasons": _reasons(definition, window),
        "funnel": {"ended": len(ended), "completed": len(completed), "steps": stages},
        "duration": _durations(completed, definition.target_ms),
        "bottleneck": _bottleneck(stages),
        "critical_path": _critical_path(completed),
        "apdex": _apdex(ended, definition.target_ms),
        "trend": {
            "previous_window": {"start": previous_window.start.isoformat(),
                                "end": previous_window.end.isoformat()},
            **{key: _change(now_summary[key], then_summary[key])
               for key in ("started", "completion_rate", "p75_duration_ms", "apdex")},
        },
        "breakdown": _breakdown(definition, journeys, breakdown_key) if breakdown_key else None,
        "sample": {"rows": len(journeys), "truncated": truncated},
    }
