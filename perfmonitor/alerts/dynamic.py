"""Dynamic thresholds: a rule's thresholds relative to the same window earlier.

Both modes turn the rule's warning / critical / resolve numbers into absolute
thresholds per label set, so the state machine (hysteresis, ``for``...) works
unchanged:

* ``percent_change``: thresholds are percentages of change against the same
  window ``baseline_offset_seconds`` earlier (a day or a week):
  ``effective = previous · (1 + threshold / 100)``. "> 50" fires when the value
  is more than 50 % above yesterday's; "< -30" when it dropped by over 30 %.
* ``baseline``: thresholds are multiples *k* of a robust spread around the
  median of the same window on the ``baseline_periods`` previous offsets
  (e.g. the last 7 days): ``effective = median + k · 1.4826 · MAD``. The MAD is
  scaled to be comparable to a standard deviation and floored at 1 % of the
  median so a perfectly flat history does not make every wiggle an outlier.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from perfmonitor.alerts.state import Thresholds
from perfmonitor.models.alerts import AlertRule, ThresholdMode

if TYPE_CHECKING:
    from perfmonitor.alerts.metrics import LabelKey, MetricReader

MAD_SCALE = 1.4826  # MAD of a normal distribution times this is its standard deviation
MIN_SPREAD_SHARE = 0.01
MIN_BASELINE_POINTS = 3


def _shifted(rule: AlertRule, reader: MetricReader, minute: datetime,
             shift: timedelta) -> dict[LabelKey, float | None]:
    from perfmonitor.alerts.metrics import evaluation_window

    values = reader.values(rule, evaluation_window(rule, minute, shift))
    return {labels: (value if count >= rule.min_samples else None)
            for labels, (value, count) in values.items()}


def _transform(rule: AlertRule, convert: Any) -> Thresholds:
    def maybe(value: float | None) -> float | None:
        return None if value is None else convert(value)

    return Thresholds(rule.operator, maybe(rule.warning_threshold),
                      maybe(rule.critical_threshold), maybe(rule.resolve_threshold))


def robust_baseline(points: list[float]) -> tuple[float, float]:
    """(median, spread) with spread = 1.4826 · MAD, floored at 1 % of |median|."""
    median = statistics.median(points)
    mad = statistics.median(abs(p - median) for p in points)
    spread = max(MAD_SCALE * mad, MIN_SPREAD_SHARE * abs(median), 1e-9)
    return median, spread


def dynamic_thresholds(rule: AlertRule, reader: MetricReader, minute: datetime,
                       keys: list[LabelKey]) -> dict[LabelKey, tuple[Thresholds | None,
                                                                     dict[str, Any]]]:
    """Effective thresholds per label set, or (None, {"reason": ...}) when there is no basis."""
    offset = timedelta(seconds=rule.baseline_offset_seconds)
    result: dict[LabelKey, tuple[Thresholds | None, dict[str, Any]]] = {}
    if rule.threshold_mode == ThresholdMode.PERCENT_CHANGE:
        previous = _shifted(rule, reader, minute, offset)
        for labels in keys:
            before = previous.get(labels)
            if before is None or before == 0:
                result[labels] = (None, {"reason": f"no value {offset} earlier to compare with"})
                continue
            result[labels] = (_transform(rule, lambda pct, b=before: b * (1 + pct / 100.0)),
                              {"previous": before})
        return result
    history: dict[LabelKey, list[float]] = {labels: [] for labels in keys}
    for period in range(1, rule.baseline_periods + 1):
        earlier = _shifted(rule, reader, minute, offset * period)
        for labels in keys:
            value = earlier.get(labels)
            if value is not None:
                history[labels].append(value)
    for labels, points in history.items():
        if len(points) < MIN_BASELINE_POINTS:
            result[labels] = (None, {"reason": f"only {len(points)} earlier window(s) with data; "
                                               f"a baseline needs {MIN_BASELINE_POINTS}"})
            continue
        median, spread = robust_baseline(points)
        result[labels] = (_transform(rule, lambda k, m=median, s=spread: m + k * s),
                          {"median": median, "spread": spread, "points": len(points)})
    return result
