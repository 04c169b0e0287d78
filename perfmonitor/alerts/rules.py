"""What a rule means: its labels, timings and escalation levels, and its validation.

Labels of a series rule come from the series contract (kind / name / dimension):

=============  ==============  ===============
kind           name label      dimension label
=============  ==============  ===============
request        route           method
query          fingerprint     origin
task           task            dimension
vital          metric          page
api            endpoint        method
render         component       dimension
error          error           dimension
resource       page            resource
memory         name            dimension
custom         name            dimension
journey        journey         status
journey_step   step            dimension
=============  ==============  ===============

``group_by`` accepts those label names (or ``name`` / ``dimension``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from perfmonitor.conf import settings
from perfmonitor.models.alerts import (
    AlertRule,
    MetricSource,
    Operator,
    Severity,
    ThresholdMode,
)
from perfmonitor.models.metrics import RollupKind

SERIES_LABELS: dict[str, tuple[str, str]] = {
    "request": ("route", "method"),
    "query": ("fingerprint", "origin"),
    "task": ("task", "dimension"),
    "vital": ("metric", "page"),
    # The same vitals from one device class only: "p75 LCP on phones".
    "vital:mobile": ("metric", "page"),
    "vital:tablet": ("metric", "page"),
    "vital:desktop": ("metric", "page"),
    "api": ("endpoint", "method"),
    "render": ("component", "dimension"),
    "error": ("error", "dimension"),
    "resource": ("page", "resource"),
    "memory": ("name", "dimension"),
    "custom": ("name", "dimension"),
    "journey": ("journey", "status"),
    "journey_step": ("step", "dimension"),
}
SERIES_AGGREGATIONS = {"p50", "p75", "p90", "p95", "p99", "mean", "min", "max", "sum", "count",
                       "rate", "error_rate"}
JOURNEY_AGGREGATIONS = {"completion_rate", "abandonment_rate", "failure_rate", "p75_duration",
                        "median_duration", "apdex"}
SCORE_AGGREGATIONS = {"overall", "frontend", "server", "journeys"}
RESERVED_LABELS = {"alertname", "rule", "severity", "alertstate"}
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_WINDOW = 31 * 86400
MAX_TIMER = 7 * 86400
UNITS = {"error_rate": "%", "completion_rate": "%", "abandonment_rate": "%", "failure_rate": "%",
         "apdex": "", "count": "", "rate": "/min",
         "overall": "", "frontend": "", "server": "", "journeys": ""}


def label_names(kind: str) -> tuple[str, str]:
    return SERIES_LABELS.get(kind, ("name", "dimension"))


def group_fields(rule: AlertRule) -> list[tuple[str, str]]:
    """(label, "name"|"dimension") for each group_by entry of a series rule."""
    name_label, dim_label = label_names(rule.kind)
    fields = []
    for label in rule.group_by or []:
        if label in (name_label, "name"):
            fields.append((name_label, "name"))
        elif label in (dim_label, "dimension"):
            fields.append((dim_label, "dimension"))
    return fields


def unit_of(rule: AlertRule) -> str:
    if rule.aggregation in UNITS:
        return UNITS[rule.aggregation]
    if rule.source == MetricSource.SERIES and rule.kind == "resource":
        return " B"
    if (rule.source == MetricSource.SERIES and rule.kind.startswith("vital")
            and rule.series_name == "CLS"):
        return ""
    return " ms"


def describe_metric(rule: AlertRule) -> str:
    if rule.source == MetricSource.SCORE:
        return f"{rule.aggregation} performance score"
    if rule.source == MetricSource.JOURNEY:
        return f"{rule.series_name} journey {rule.get_aggregation_display()}"
    what = rule.kind
    if rule.series_name:
        what += f" {rule.series_name}"
    if rule.series_dimension:
        what += f" [{rule.series_dimension}]"
    return f"{rule.aggregation} of {what} over {format_seconds(rule.window_seconds)}"


def format_seconds(seconds: int | float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Timing:
    group_wait: int
    group_interval: int
    repeat_interval: int


def timing(rule: AlertRule | None) -> Timing:
    def pick(value: int | None, default: int) -> int:
        return int(default if value is None else value)

    return Timing(
        group_wait=pick(getattr(rule, "group_wait_seconds", None), settings.ALERT_GROUP_WAIT),
        group_interval=pick(getattr(rule, "group_interval_seconds", None),
                            settings.ALERT_GROUP_INTERVAL),
        repeat_interval=pick(getattr(rule, "repeat_interval_seconds", None),
                             settings.ALERT_REPEAT_INTERVAL),
    )


@dataclass(frozen=True)
class EscalationLevel:
    after_seconds: int
    channels: tuple[str, ...]


def escalation_levels(rule: AlertRule) -> list[EscalationLevel]:
    levels = []
    for item in rule.escalation or []:
        if isinstance(item, dict):
            levels.append(EscalationLevel(int(item.get("after_seconds", 0)),
                                          tuple(str(c) for c in item.get("channels", []))))
    return levels


def top_severity(rule: AlertRule) -> str:
    return Severity.CRITICAL if rule.critical_threshold is not None else Severity.WARNING


# -- validation -------------------------------------------------------------------------------

def validate_rule(rule: AlertRule) -> None:
    """Raise ValidationError({field: [messages]}) naming every problem of the rule."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    _validate_metric(rule, add)
    _validate_thresholds(rule, add)
    _validate_timers(rule, add)
    _validate_labels(rule, add)
    _validate_escalation(rule, add)
    if errors:
        raise ValidationError(errors)


def _validate_metric(rule: AlertRule, add: Any) -> None:
    if rule.source == MetricSource.SERIES:
        if rule.kind not in RollupKind.values:
            add("kind", f"Unknown series kind {rule.kind!r}; choose one of "
                        f"{', '.join(RollupKind.values)}.")
        if rule.aggregation not in SERIES_AGGREGATIONS:
            add("aggregation", f"{rule.aggregation!r} does not apply to a rollup series; use one "
                               f"of {', '.join(sorted(SERIES_AGGREGATIONS))}.")
        allowed = set(label_names(rule.kind)) | {"name", "dimension"}
        group_by = rule.group_by
        if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
            add("group_by", "group_by must be a list of label names, e.g. [\"route\"].")
        else:
            unknown = [g for g in group_by if g not in allowed]
            if unknown:
                add("group_by", f"{', '.join(unknown)} cannot group a {rule.kind} series; its "
                                f"labels are {' and '.join(label_names(rule.kind))}.")
            if len({label for label, _ in group_fields(rule)}) != len(group_by):
                add("group_by", "group_by lists the same label twice.")
    elif rule.source == MetricSource.JOURNEY:
        if not rule.series_name:
            add("series_name", "A journey rule needs the journey type in series_name.")
        if rule.aggregation not in JOURNEY_AGGREGATIONS:
            add("aggregation", f"Journey rules use {' or '.join(sorted(JOURNEY_AGGREGATIONS))}.")
        if rule.group_by:
            add("group_by", "Journey rules cannot be grouped.")
    elif rule.source == MetricSource.SCORE:
        if rule.aggregation not in SCORE_AGGREGATIONS:
            add("aggregation", f"Score rules use one of {', '.join(sorted(SCORE_AGGREGATIONS))}.")
        if rule.group_by:
            add("group_by", "Score rules cannot be grouped.")
        if rule.threshold_mode != ThresholdMode.STATIC:
            add("threshold_mode", "Score rules use static thresholds.")
    else:
        add("source", f"Unknown source {rule.source!r}.")
    if not 60 <= (rule.window_seconds or 0) <= MAX_WINDOW:
        add("window_seconds", "The window must be between 60 seconds and 31 days.")
    elif rule.window_seconds % 60:
        add("window_seconds", "The window must be a whole number of minutes (rollups are "
                              "per minute).")
    if (rule.min_samples or 0) < 1:
        add("min_samples", "min_samples must be at least 1.")


def _validate_thresholds(rule: AlertRule, add: Any) -> None:
    warning, critical, resolve = (rule.warning_threshold, rule.critical_threshold,
                                  rule.resolve_threshold)
    if warning is None and critical is None:
        add("warning_threshold", "Set a warning threshold, a critical threshold or both.")
        return
    if rule.operator not in Operator.values:
        add("operator", f"Unknown operator {rule.operator!r}.")
        return
    above = rule.operator in (Operator.GT, Operator.GTE)
    if warning is not None and critical is not None:
        if above and critical < warning:
            add("critical_threshold", f"With '{rule.operator}', critical ({critical:g}) must not "
                                      f"be below warning ({warning:g}).")
        if not above and critical > warning:
            add("critical_threshold", f"With '{rule.operator}', critical ({critical:g}) must not "
                                      f"be above warning ({warning:g}).")
    lowest = min(t for t in (warning, critical) if t is not None) if above else \
        max(t for t in (warning, critical) if t is not None)
    if resolve is not None:
        if above and resolve > lowest:
            add("resolve_threshold", f"The resolve threshold ({resolve:g}) must be at or below "
                                     f"the breach threshold ({lowest:g}) for '{rule.operator}'.")
        if not above and resolve < lowest:
            add("resolve_threshold", f"The resolve threshold ({resolve:g}) must be at or above "
                                     f"the breach threshold ({lowest:g}) for '{rule.operator}'.")
    if rule.threshold_mode == ThresholdMode.BASELINE and (rule.baseline_periods or 0) < 3:
        add("baseline_periods", "A robust baseline needs at least 3 earlier windows.")
    if rule.threshold_mode != ThresholdMode.STATIC and \
            (rule.baseline_offset_seconds or 0) < (rule.window_seconds or 0):
        add("baseline_offset_seconds", "The comparison offset must be at least the window, or "
                                       "the windows overlap.")


def _validate_timers(rule: AlertRule, add: Any) -> None:
    for field in ("for_seconds", "keep_firing_for_seconds"):
        if (getattr(rule, field) or 0) > MAX_TIMER:
            add(field, "At most 7 days.")
    for field in ("group_wait_seconds", "group_interval_seconds", "repeat_interval_seconds"):
        value = getattr(rule, field)
        if value is not None and value > MAX_TIMER:
            add(field, "At most 7 days.")
    if rule.repeat_interval_seconds is not None and rule.repeat_interval_seconds < 60:
        add("repeat_interval_seconds", "Repeating more often than once a minute is spam; use "
                                       "at least 60 seconds.")


def _validate_labels(rule: AlertRule, add: Any) -> None:
    labels = rule.labels
    if not isinstance(labels, dict):
        add("labels", "labels must be an object of label name to string value.")
        return
    for name, value in labels.items():
        if not LABEL_NAME.match(str(name)):
            add("labels", f"{name!r} is not a valid label name (letters, digits, underscore).")
        elif name in RESERVED_LABELS:
            add("labels", f"{name!r} is set by perfmonitor and cannot be overridden.")
        if not isinstance(value, str):
            add("labels", f"The value of {name!r} must be a string.")


def _validate_escalation(rule: AlertRule, add: Any) -> None:
    from perfmonitor.models import NotificationChannel

    levels = rule.escalation
    if not isinstance(levels, list):
        add("escalation", "escalation must be a list of levels.")
        return
    wanted: set[str] = set()
    for index, level in enumerate(levels, start=1):
        if not isinstance(level, dict) or set(level) - {"after_seconds", "channels"}:
            add("escalation", f"Level {index} must be {{\"after_seconds\": n, \"channels\": "
                              f"[names]}}.")
            continue
        after = level.get("after_seconds")
        if not isinstance(after, int) or isinstance(after, bool) or not 60 <= after <= MAX_TIMER:
            add("escalation", f"Level {index}: after_seconds must be whole seconds between 60 "
                              f"and 7 days.")
        channels = level.get("channels")
        if not isinstance(channels, list) or not channels or \
                not all(isinstance(c, str) for c in channels):
            add("escalation", f"Level {index}: channels must be a non-empty list of channel "
                              f"names.")
        else:
            wanted.update(channels)
    if wanted:
        known = set(NotificationChannel.objects.filter(name__in=wanted)
                    .values_list("name", flat=True))
        missing = sorted(wanted - known)
        if missing:
            add("escalation", f"Unknown notification channel(s): {', '.join(missing)}.")
    if rule.escalation_loops and not levels:
        add("escalation_loops", "Loops need at least one escalation level.")
