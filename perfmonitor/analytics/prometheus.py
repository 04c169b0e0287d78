"""Prometheus text exposition (format 0.0.4) of the rollups.

Served at ``perfmonitor/metrics``. Numbers come from the database, not from
process memory, so every web worker returns the same answer and a scrape that
lands on any process is right. Rollups are windows, not process counters:
request, query and vital series are gauges over the last ``window`` (default
5 minutes, ``?window=15m`` to change), with quantiles as labels, like a
Prometheus summary. The monitor's own per-process counters (captured,
dropped, flush errors) are real counters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta

from perfmonitor.analytics.query import Window, pinned_marks, prepare_sketches, stats, top
from perfmonitor.analytics.scores import performance_score
from perfmonitor.models import MonitorHealth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_WINDOW = timedelta(minutes=5)
QUANTILES = (0.5, 0.95, 0.99)
MAX_QUERY_SERIES = 50


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float | None, **labels: str) -> None:
        if value is not None:
            self.lines.append(f"{name}{_labels(**labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _summary(out: _Writer, name: str, help_text: str, items: Iterable[tuple[dict, object]],
             ) -> None:
    items = list(items)
    prepare_sketches(s for _labels, s in items)  # type: ignore[misc]
    out.family(name, "gauge", help_text + " Quantiles over the window.")
    for labels, s in items:
        qs = s.sketch.quantiles(QUANTILES)  # type: ignore[attr-defined]
        for q in QUANTILES:
            out.sample(name, s._clamp(qs[q]), **labels, quantile=str(q))  # type: ignore[attr-defined]
    out.family(f"{name}_window_count", "gauge", "Observations in the window.")
    for labels, s in items:
        out.sample(f"{name}_window_count", s.count, **labels)  # type: ignore[attr-defined]
    out.family(f"{name}_window_sum", "gauge", "Sum of observations in the window.")
    for labels, s in items:
        out.sample(f"{name}_window_sum", s.sum, **labels)  # type: ignore[attr-defined]


def exposition(window: Window | None = None) -> str:
    window = window or Window.last(DEFAULT_WINDOW)
    out = _Writer()
    out.family("perfmonitor_window_seconds", "gauge", "Length of the window the gauges cover.")
    out.sample("perfmonitor_window_seconds", window.span.total_seconds())
    with pinned_marks():
        routes = stats("request", window=window, group_by=("name", "dimension"))
        _summary(out, "perfmonitor_request_duration_milliseconds",
                 "Server request duration by route template and method.",
                 (({"route": k[0], "method": k[1]}, s) for k, s in sorted(routes.items())))
        out.family("perfmonitor_request_errors_window", "gauge",
                   "Failed requests (5xx or exception) in the window.")
        for (route, method), s in sorted(routes.items()):
            out.sample("perfmonitor_request_errors_window", s.errors, route=route, method=method)
        queries = top("query", window=window, limit=MAX_QUERY_SERIES, group_by=("name",))
        _summary(out, "perfmonitor_query_duration_milliseconds",
                 f"SQL duration by fingerprint (top {MAX_QUERY_SERIES} by total time).",
                 (({"fingerprint": r.name}, r.stats) for r in queries))
        vitals = stats("vital", window=window, group_by=("name", "dimension"))
        prepare_sketches(vitals.values())
        out.family("perfmonitor_web_vital_p75", "gauge",
                   "Web Vital p75 by page (ms; CLS unitless).")
        for (vital, page), s in sorted(vitals.items()):
            out.sample("perfmonitor_web_vital_p75", s.p75, vital=vital, page=page)
        out.family("perfmonitor_performance_score", "gauge", "Overall score 0-100.")
        out.sample("perfmonitor_performance_score", performance_score(window))
    for field, help_text in (("captured", "Records captured by the process."),
                             ("dropped", "Records dropped (buffer full)."),
                             ("flush_errors", "Failed flushes."),
                             ("flushed", "Records written.")):
        name = f"perfmonitor_monitor_{field}_total"
        out.family(name, "counter", help_text)
        for process, value in MonitorHealth.objects.values_list("process", field):
            out.sample(name, value, process=process)
    return out.text()
