"""Journey metrics from the rollups, for alert rules and dashboards.

Series written by the tracker (see ``perfmonitor.journeys.tracker``):

============  ===========  =====================================  ======================
kind          name         dimension                              value
============  ===========  =====================================  ======================
journey       type         started                                0 (a count)
journey       type         completed / abandoned / failed         end-to-end duration ms
journey_step  type         step name                              step duration ms
============  ===========  =====================================  ======================

Every metric here is over journeys that *ended* inside the window (rates
compare completions with all endings), so a window that ends now is not
penalized for users who are still mid-way. ``None`` means no data.
"""

from __future__ import annotations

from datetime import timedelta

from perfmonitor.analytics.query import SeriesStats, Window, stats, total
from perfmonitor.journeys.definitions import JourneyError, get_definition

ENDINGS = ("completed", "abandoned", "failed")
METRICS = ("completion_rate", "abandonment_rate", "failure_rate", "p75_duration",
           "median_duration", "started", "ended", "apdex")


def as_window(window: Window | timedelta) -> Window:
    return Window.last(window) if isinstance(window, timedelta) else window


def _endings(journey_type: str, window: Window) -> dict[str, SeriesStats]:
    grouped = stats("journey", window=window, name=journey_type, dimension=ENDINGS,
                    group_by=("dimension",))
    return {dim: grouped.get((dim,), SeriesStats()) for dim in ENDINGS}


def apdex_from_sketch(completed: SeriesStats, others: int, t_ms: float) -> float | None:
    """Apdex with T: completed journeys by duration; failed and abandoned are frustrated."""
    n = completed.count + others
    if n == 0:
        return None
    satisfied = min(completed.sketch.count_at_most(t_ms), completed.count)
    within_4t = min(completed.sketch.count_at_most(4 * t_ms), completed.count)
    return (satisfied + (within_4t - satisfied) / 2) / n


def journey_metric(journey_type: str, metric: str, window: Window | timedelta) -> float | None:
    """One number for an alert rule: see ``METRICS``. Rates are 0..1; durations in ms."""
    definition = get_definition(journey_type)
    if metric not in METRICS:
        raise JourneyError(f"Unknown journey metric {metric!r}; one of: {', '.join(METRICS)}.")
    window = as_window(window)
    if metric == "started":
        return float(total("journey", window=window, name=journey_type,
                           dimension="started").count)
    if metric in ("p75_duration", "median_duration"):
        done = total("journey", window=window, name=journey_type, dimension="completed")
        return done.p75 if metric == "p75_duration" else done.p50
    endings = _endings(journey_type, window)
    ended = sum(s.count for s in endings.values())
    if metric == "ended":
        return float(ended)
    if metric == "apdex":
        others = endings["abandoned"].count + endings["failed"].count
        return apdex_from_sketch(endings["completed"], others, definition.target_ms)
    if ended == 0:
        return None
    dimension = {"completion_rate": "completed", "abandonment_rate": "abandoned",
                 "failure_rate": "failed"}[metric]
    return endings[dimension].count / ended


def step_timings(journey_type: str, window: Window | timedelta) -> dict[str, SeriesStats]:
    """Per-step duration statistics from the ``journey_step`` rollups."""
    window = as_window(window)
    grouped = stats("journey_step", window=window, name=journey_type, group_by=("dimension",))
    return {key[0]: value for key, value in grouped.items()}
