"""A rule's metric, per label set, from the analytics query layer (rollups only).

One :class:`MetricReader` serves one evaluation run: rules that read the same
series over the same window share one query, and the watermarks are read once
(``pinned_marks``), so 200 rules cost a handful of queries, not hundreds.

Derived metrics are imported lazily: the performance score from
``perfmonitor.analytics.scores.performance_score`` and journey metrics from
``perfmonitor.journeys.journey_metric``. While either is unavailable a rule
on it evaluates to the error state with a message that says so.
"""

from __future__ import annotations

import importlib
from collections import Counter
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from perfmonitor.alerts.rules import group_fields
from perfmonitor.alerts.state import Observation, Thresholds
from perfmonitor.analytics import query
from perfmonitor.models.alerts import AlertRule, MetricSource, ThresholdMode

LabelKey = tuple[tuple[str, str], ...]
QUANTILES = {"p50": 0.50, "p75": 0.75, "p90": 0.90, "p95": 0.95, "p99": 0.99}
PERCENT_JOURNEY_METRICS = {"completion_rate", "abandonment_rate", "failure_rate"}
_GLOB = set("*?[")


class MetricError(Exception):
    """The metric could not be evaluated; the message says why (shown on the alert)."""


def _pattern(text: str) -> tuple[str | None, str | None]:
    """(exact value, glob) of a name/dimension filter; both None for 'all'."""
    if not text:
        return None, None
    if _GLOB & set(text):
        return None, text
    return text, None


def aggregate(stats: query.SeriesStats, aggregation: str, window: query.Window) -> float | None:
    if not stats.count:
        return None
    if aggregation in QUANTILES:
        return stats.quantile(QUANTILES[aggregation])
    if aggregation == "error_rate":
        return stats.errors / stats.count * 100.0
    if aggregation == "rate":
        return stats.count / window.minutes if window.minutes else None
    if aggregation == "count":
        return float(stats.count)
    return {"mean": stats.mean, "min": stats.min, "max": stats.max,
            "sum": stats.sum}.get(aggregation)


class MetricReader:
    """Reads rule metrics; caches query results for the lifetime of one evaluation run.

    :meth:`plan` counts which (kind, window) pairs several rules read; those are
    fetched once for every series of the kind and filtered in memory, so 40
    rules on 40 query fingerprints over the same 5 minutes cost one query.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple, dict[tuple, query.SeriesStats]] = {}
        self._shared: Counter[tuple[str, datetime, datetime]] = Counter()
        self._analyses: dict[tuple[datetime, datetime], dict[str, Any]] = {}

    def plan(self, rules: list[AlertRule], minute: datetime) -> None:
        for rule in rules:
            if rule.source == MetricSource.SERIES:
                for window in windows_of(rule, minute):
                    self._shared[(rule.kind, window.start, window.end)] += 1

    def _stats(self, kind: str, window: query.Window, name: str | None, dimension: str | None,
               group_by: tuple[str, ...]) -> dict[tuple, query.SeriesStats]:
        key = (kind, window.start, window.end, name, dimension, group_by)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = query.stats(kind, window=window, name=name,
                                                    dimension=dimension, group_by=group_by)
        return cached

    def values(self, rule: AlertRule, window: query.Window) -> dict[LabelKey, tuple[float | None,
                                                                                   int]]:
        """{label set: (value, sample count)} of the rule's metric over ``window``."""
        if rule.source == MetricSource.SCORE:
            return {(): self._score(rule.aggregation, window)}
        if rule.source == MetricSource.JOURNEY:
            return {(): _journey(rule.series_name, rule.aggregation, window)}
        return self._series(rule, window)

    def _series(self, rule: AlertRule, window: query.Window) -> dict[LabelKey, tuple[float | None,
                                                                                    int]]:
        name_exact, name_glob = _pattern(rule.series_name)
        dim_exact, dim_glob = _pattern(rule.series_dimension)
        grouping = group_fields(rule)
        if self._shared[(rule.kind, window.start, window.end)] >= 2:
            fetch: tuple[str, ...] = ("name", "dimension")  # shared: every series, filter here
            rows = self._stats(rule.kind, window, None, None, fetch)
        else:
            needed = {field for _, field in grouping}
            if name_glob:
                needed.add("name")
            if dim_glob:
                needed.add("dimension")
            fetch = tuple(f for f in ("name", "dimension") if f in needed)
            rows = self._stats(rule.kind, window, name_exact, dim_exact, fetch)
            name_exact = name_exact if "name" in fetch else None
            dim_exact = dim_exact if "dimension" in fetch else None
        position = {f: i for i, f in enumerate(fetch)}
        matches: dict[LabelKey, list[query.SeriesStats]] = {}
        for key, series in rows.items():
            if "name" in position:
                name = key[position["name"]]
                if (name_exact is not None and name != name_exact) or \
                        (name_glob and not fnmatchcase(name, name_glob)):
                    continue
            if "dimension" in position:
                dimension = key[position["dimension"]]
                if (dim_exact is not None and dimension != dim_exact) or \
                        (dim_glob and not fnmatchcase(dimension, dim_glob)):
                    continue
            labels = tuple(sorted((label, key[position[f]]) for label, f in grouping))
            matches.setdefault(labels, []).append(series)
        result = {}
        for labels, parts in matches.items():
            merged = parts[0] if len(parts) == 1 else combine(parts)
            result[labels] = (aggregate(merged, rule.aggregation, window), merged.count)
        return result

    def _score(self, aggregation: str, window: query.Window) -> tuple[float | None, int]:
        """The overall score (0-100) or one part (front-end, server, journeys; also 0-100)."""
        analysis = self._analyses.get((window.start, window.end))
        if analysis is None:
            analysis = self._analyses[(window.start, window.end)] = _analyze(window)
        if aggregation == "overall":
            result = analysis.get("score")
        else:
            part = analysis.get("parts", {}).get(aggregation) or {}
            result = part.get("score")
            result = result * 100.0 if isinstance(result, int | float) else None
        return (float(result), 1) if isinstance(result, int | float) else (None, 0)


def combine(parts: list[query.SeriesStats]) -> query.SeriesStats:
    """Merge several series (sketches stay serialized until a quantile is asked for)."""
    merged = query.SeriesStats()
    for part in parts:
        merged.merge(part)
    return merged


def _analyze(window: query.Window) -> dict[str, Any]:
    try:
        scores = importlib.import_module("perfmonitor.analytics.scores")
    except ImportError as exc:
        raise MetricError("The performance score is not available yet "
                          f"(perfmonitor.analytics.scores: {exc}).") from exc
    analyze: Any = getattr(scores, "analyze_performance", None)
    if analyze is None:
        raise MetricError("perfmonitor.analytics.scores.analyze_performance is missing.")
    return analyze(window)


def _journey(journey_type: str, aggregation: str, window: query.Window) -> tuple[float | None,
                                                                                   int]:
    try:
        journey_metric = importlib.import_module("perfmonitor.journeys").journey_metric
    except (ImportError, AttributeError) as exc:
        raise MetricError("Journey metrics are not available yet "
                          f"(perfmonitor.journeys.journey_metric: {exc}).") from exc
    try:
        value = journey_metric(journey_type, aggregation, window)
    except Exception as exc:  # unknown journey type and the like: show it on the alert
        raise MetricError(f"journey metric {aggregation} of {journey_type!r}: {exc}") from exc
    if value is None:
        return None, 0
    scale = 100.0 if aggregation in PERCENT_JOURNEY_METRICS else 1.0
    return float(value) * scale, 1


def evaluation_window(rule: AlertRule, minute: datetime, shift: timedelta = timedelta(0),
                      ) -> query.Window:
    """The window a rule reads at ``minute``: whole minutes up to (not including) it."""
    end = minute - shift
    return query.Window(end - timedelta(seconds=rule.window_seconds), end)


def windows_of(rule: AlertRule, minute: datetime) -> list[query.Window]:
    """Every window an evaluation of ``rule`` at ``minute`` reads (dynamic thresholds: more)."""
    windows = [evaluation_window(rule, minute)]
    offset = timedelta(seconds=rule.baseline_offset_seconds)
    if rule.threshold_mode == ThresholdMode.PERCENT_CHANGE:
        windows.append(evaluation_window(rule, minute, offset))
    elif rule.threshold_mode == ThresholdMode.BASELINE:
        windows += [evaluation_window(rule, minute, offset * i)
                    for i in range(1, rule.baseline_periods + 1)]
    return windows


def observe(rule: AlertRule, reader: MetricReader, minute: datetime) -> dict[LabelKey,
                                                                             Observation]:
    """Observations per label set at ``minute``; raises MetricError when the metric fails."""
    from perfmonitor.alerts.dynamic import dynamic_thresholds

    values = reader.values(rule, evaluation_window(rule, minute))
    static = Thresholds(rule.operator, rule.warning_threshold, rule.critical_threshold,
                        rule.resolve_threshold)
    dynamic: dict[LabelKey, tuple[Thresholds | None, dict[str, Any]]] = {}
    if rule.threshold_mode != ThresholdMode.STATIC and values:
        dynamic = dynamic_thresholds(rule, reader, minute, list(values))
    result: dict[LabelKey, Observation] = {}
    for labels, (value, count) in values.items():
        if value is None or count < rule.min_samples:
            result[labels] = Observation.no_data(
                f"{count} sample(s) in the last {rule.window_seconds // 60} min "
                f"(at least {rule.min_samples} needed)")
            continue
        thresholds, context = dynamic.get(labels, (static, {}))
        if thresholds is None:
            result[labels] = Observation.no_data(context.get("reason", "no baseline"))
            continue
        result[labels] = Observation("value", value, count, thresholds, context=context)
    return result
