"""What capture puts in the buffer, and how each record expands into rows.

The request path only builds a record and appends it; everything that costs
something (fingerprints, N+1 detection, sampling, URL scrubbing) happens in
``expand``, which the flusher calls off the request path.

Series contract (kind, name, dimension) of the rollups written here:

=========  ==========================  =====================================
kind       name                        dimension
=========  ==========================  =====================================
request    route template              HTTP method
query      fingerprint                 route ("GET /courses/<int:pk>/") or
                                       "task:<name>" / "command:<name>"
task       task name                   ""
=========  ==========================  =====================================

Browser events (vital, api, render, error, resource, memory, custom) and
journeys use :class:`Measurement` directly; their modules document their
series.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from perfmonitor.capture.urls import scrub_url
from perfmonitor.conf import settings

if TYPE_CHECKING:
    from perfmonitor.capture.writer import Sink


class Record(Protocol):
    def expand(self, sink: Sink) -> None: ...


@dataclass(slots=True)
class Measurement:
    """One value for one rollup series, with an optional raw row."""

    kind: str
    name: str
    value: float
    ts: float
    dimension: str = ""
    error: bool = False
    row_model: str | None = None  # "metric" or "vital"
    row: dict[str, Any] | None = None

    def expand(self, sink: Sink) -> None:
        sink.measure(self.kind, self.name, self.dimension, self.value, self.error, self.ts)
        if self.row_model is not None and self.row is not None:
            sink.row(self.row_model, self.ts, self.row)


def _query_rollups(sink: Sink, queries: list[tuple[str, float, bool]],
                   overflow: dict[str, list[float]], dimension: str, ts: float,
                   ) -> tuple[Counter[str], dict[str, float], dict[str, str], list[tuple[str, float]]]:
    """Feed every query into its fingerprint's rollup; return per-fingerprint stats."""
    counts: Counter[str] = Counter()
    totals: dict[str, float] = {}
    sqls: dict[str, str] = {}
    slow: list[tuple[str, float]] = []
    slow_ms = settings.SLOW_QUERY_MS
    for sql, ms, failed in queries:
        fp, normalized = sink.fingerprint(sql)
        counts[fp] += 1
        totals[fp] = totals.get(fp, 0.0) + ms
        sqls[fp] = normalized
        sink.measure("query", fp, dimension, ms, failed, ts)
        if ms >= slow_ms:
            slow.append((fp, ms))
    for sql, (n, total) in overflow.items():
        if sql == "<other>":
            continue
        fp, normalized = sink.fingerprint(sql)
        counts[fp] += int(n)
        totals[fp] = totals.get(fp, 0.0) + total
        sqls[fp] = normalized
        sink.measure("query", fp, dimension, total / n, False, ts, weight=int(n))
    return counts, totals, sqls, slow


def _query_detail_rows(sink: Sink, *, counts: Counter[str], totals: dict[str, float],
                       sqls: dict[str, str], slow: list[tuple[str, float]], origin: str,
                       url: str, ts: float, user_id: str = "") -> list[dict[str, Any]]:
    """Raw rows for slow queries and N+1 hot spots, capped per request."""
    cap = settings.MAX_QUERY_DETAILS_PER_REQUEST
    threshold = settings.N_PLUS_ONE_THRESHOLD
    n_plus_one = [
        {"fingerprint": fp, "sql": sqls[fp], "count": n,
         "total_ms": round(totals[fp], 3)}
        for fp, n in counts.most_common() if n >= threshold
    ]
    rows = 0
    for item in n_plus_one:
        if rows >= cap:
            break
        sink.row("metric", ts, {
            "metric_type": "query", "metric_name": item["fingerprint"], "url": url,
            "user_id": user_id, "duration": item["total_ms"],
            "metadata": {"origin": origin, "sql": item["sql"], "n_plus_one": True,
                         "count": item["count"], "slow": False},
        })
        rows += 1
    for fp, ms in sorted(slow, key=lambda s: -s[1]):
        if rows >= cap:
            break
        sink.row("metric", ts, {
            "metric_type": "query", "metric_name": fp, "url": url, "user_id": user_id,
            "duration": round(ms, 3),
            "metadata": {"origin": origin, "sql": sqls[fp], "n_plus_one": counts[fp] >= threshold,
                         "count": counts[fp], "slow": True},
        })
        rows += 1
    return n_plus_one


@dataclass(slots=True)
class RequestRecord:
    method: str
    route: str
    view: str
    path: str
    query_string: str
    status: int
    ts: float
    duration_ms: float
    queries: list[tuple[str, float, bool]]
    overflow: dict[str, list[float]]
    query_count: int
    query_time_ms: float
    exception: str = ""
    user_id: str = ""
    streaming: bool = False
    ttfb_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> bool:
        return bool(self.exception) or self.status >= 500

    def expand(self, sink: Sink) -> None:
        series = f"{self.method} {self.route}"
        sink.measure("request", self.route, self.method, self.duration_ms, self.error, self.ts)
        url = scrub_url(self.path, self.query_string)
        counts, totals, sqls, slow = _query_rollups(
            sink, self.queries, self.overflow, series, self.ts)
        n_plus_one = _query_detail_rows(
            sink, counts=counts, totals=totals, sqls=sqls, slow=slow, origin=series,
            url=url, ts=self.ts, user_id=self.user_id)
        is_slow = self.duration_ms >= settings.SLOW_API_MS
        if not (self.error or is_slow or n_plus_one or random.random() < settings.SAMPLE_RATE):
            return
        metadata: dict[str, Any] = {
            "method": self.method, "route": self.route, "view": self.view,
            "status": self.status, "query_count": self.query_count,
            "query_time_ms": round(self.query_time_ms, 3), "slow": is_slow,
            "n_plus_one": [{k: v for k, v in item.items() if k != "sql"} for item in n_plus_one],
        }
        if self.streaming:
            metadata["streaming"] = True
            metadata["ttfb_ms"] = self.ttfb_ms
        metadata.update(self.extra)
        sink.row("metric", self.ts, {
            "metric_type": "request", "metric_name": series, "url": url,
            "user_id": self.user_id, "duration": round(self.duration_ms, 3),
            "metadata": metadata,
            "error_details": {"exception": self.exception, "status": self.status}
            if self.error else None,
        })


@dataclass(slots=True)
class TaskRecord:
    """A Celery task (or other unit of background work) with its queries."""

    name: str
    kind: str  # "task" or "command"
    ts: float
    duration_ms: float
    queries: list[tuple[str, float, bool]]
    overflow: dict[str, list[float]]
    query_count: int
    query_time_ms: float
    exception: str = ""

    def expand(self, sink: Sink) -> None:
        origin = f"{self.kind}:{self.name}"
        if self.kind == "task":
            sink.measure("task", self.name, "", self.duration_ms, bool(self.exception), self.ts)
        counts, totals, sqls, slow = _query_rollups(
            sink, self.queries, self.overflow, origin, self.ts)
        _query_detail_rows(sink, counts=counts, totals=totals, sqls=sqls, slow=slow,
                           origin=origin, url="", ts=self.ts)
        if self.kind == "task" and (self.exception or self.duration_ms >= settings.SLOW_API_MS
                                    or random.random() < settings.SAMPLE_RATE):
            sink.row("metric", self.ts, {
                "metric_type": "task", "metric_name": self.name, "url": "",
                "duration": round(self.duration_ms, 3),
                "metadata": {"query_count": self.query_count,
                             "query_time_ms": round(self.query_time_ms, 3)},
                "error_details": {"exception": self.exception} if self.exception else None,
            })


@dataclass(slots=True)
class StandaloneQuery:
    """A query outside any request or task (management command, shell, thread)."""

    origin: str
    sql: str
    ms: float
    failed: bool
    ts: float

    def expand(self, sink: Sink) -> None:
        counts, totals, sqls, slow = _query_rollups(
            sink, [(self.sql, self.ms, self.failed)], {}, self.origin, self.ts)
        if slow:
            _query_detail_rows(sink, counts=counts, totals=totals, sqls=sqls, slow=slow,
                               origin=self.origin, url="", ts=self.ts)
