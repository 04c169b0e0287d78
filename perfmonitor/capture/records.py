"""What capture puts in the buffer, and how each record expands into rows.

The request path only builds a record and appends it; everything that costs
something (fingerprints, N+1 detection, sampling, URL scrubbing) happens in
``expand``, which the flusher calls off the request path.

Series contract (kind, name, dimension) of the rollups written here:

=========  ==========================  =====================================
kind       name                        dimension
=========  ==========================  =====================================
request    route template              HTTP method ("OTHER" for non-standard
                                       methods)
query      fingerprint                 route ("GET /courses/<int:pk>/") or
                                       "task:<name>" / "command:<name>" /
                                       "process:<program>"
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
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from perfmonitor.capture.context import OTHER_SQL
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


Queries = list[tuple[str, float, bool]]
Overflow = dict[str, list[float]]

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
                          "CONNECT"})
# Transaction control repeats by design (savepoints in loops): never an N+1.
_NOT_N_PLUS_ONE = ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "SET ")


def query_totals(queries: Queries, overflow: Overflow) -> tuple[int, float]:
    """(query count, total query time in ms) of a capture context's queries."""
    count = len(queries) + int(sum(slot[0] for slot in overflow.values()))
    total = sum(ms for _, ms, _ in queries) + sum(slot[1] for slot in overflow.values())
    return count, total


QueryStats = tuple[Counter[str], dict[str, float], dict[str, str], list[tuple[str, float]]]


def _query_rollups(sink: Sink, queries: Queries, overflow: Overflow, dimension: str,
                   ts: float) -> QueryStats:
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
    for sql, slot in overflow.items():
        if sql == OTHER_SQL:
            continue
        n, total = int(slot[0]), slot[1]
        failures = int(slot[2]) if len(slot) > 2 else 0
        fp, normalized = sink.fingerprint(sql)
        counts[fp] += n
        totals[fp] = totals.get(fp, 0.0) + total
        sqls[fp] = normalized
        # Past the cap only sums are kept: the mean stands for each query.
        sink.measure("query", fp, dimension, total / n, False, ts, weight=n - failures)
        if failures:
            sink.measure("query", fp, dimension, total / n, True, ts, weight=failures)
    return counts, totals, sqls, slow


def _n_plus_one(counts: Counter[str], totals: dict[str, float], sqls: dict[str, str],
                ) -> list[dict[str, Any]]:
    threshold = settings.N_PLUS_ONE_THRESHOLD
    return [
        {"fingerprint": fp, "sql": sqls[fp], "count": n, "total_ms": round(totals[fp], 3)}
        for fp, n in counts.most_common()
        if n >= threshold and not sqls[fp].upper().startswith(_NOT_N_PLUS_ONE)
    ]


def _query_detail_rows(sink: Sink, *, counts: Counter[str], totals: dict[str, float],
                       sqls: dict[str, str], slow: list[tuple[str, float]], origin: str,
                       url: str, ts: float, user_id: str = "") -> list[dict[str, Any]]:
    """Raw rows for N+1 hot spots, then slow queries, at most
    MAX_QUERY_DETAILS_PER_REQUEST per request. Returns the N+1 hot spots."""
    cap = settings.MAX_QUERY_DETAILS_PER_REQUEST
    n_plus_one = _n_plus_one(counts, totals, sqls)
    flagged = {item["fingerprint"] for item in n_plus_one}
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
            "metadata": {"origin": origin, "sql": sqls[fp], "n_plus_one": fp in flagged,
                         "count": counts[fp], "slow": True},
        })
        rows += 1
    return n_plus_one


@dataclass(slots=True)
class RequestRecord:
    """One served request, built by the middleware; everything costly happens in expand()."""

    method: str
    route: str
    view: str
    path: str
    query_string: str
    status: int
    ts: float
    duration_ms: float
    queries: Queries
    overflow: Overflow
    exception: str = ""
    url_name: str = ""
    user_id: str = ""
    streaming: bool = False
    ttfb_ms: float | None = None
    aborted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> bool:
        """Server errors only: an Http404 or PermissionDenied is the site working."""
        return self.status >= 500

    def expand(self, sink: Sink) -> None:
        method = self.method if self.method in HTTP_METHODS else "OTHER"
        series = f"{method} {self.route}"
        sink.measure("request", self.route, method, self.duration_ms, self.error, self.ts)
        url = scrub_url(self.path, self.query_string)
        counts, totals, sqls, slow = _query_rollups(
            sink, self.queries, self.overflow, series, self.ts)
        n_plus_one = _query_detail_rows(
            sink, counts=counts, totals=totals, sqls=sqls, slow=slow, origin=series,
            url=url, ts=self.ts, user_id=self.user_id)
        is_slow = self.duration_ms >= settings.SLOW_API_MS
        if not (self.error or is_slow or n_plus_one or random.random() < settings.SAMPLE_RATE):
            return
        query_count, query_time_ms = query_totals(self.queries, self.overflow)
        cap = settings.MAX_QUERY_DETAILS_PER_REQUEST
        metadata: dict[str, Any] = {
            "method": method, "route": self.route, "view": self.view, "url_name": self.url_name,
            "status": self.status, "query_count": query_count,
            "query_time_ms": round(query_time_ms, 3), "slow": is_slow,
            "n_plus_one": [{k: v for k, v in item.items() if k != "sql"}
                           for item in n_plus_one[:cap]],
        }
        if self.exception:
            metadata["exception"] = self.exception
        if self.streaming:
            metadata["streaming"] = True
            metadata["ttfb_ms"] = round(self.ttfb_ms or 0.0, 3)
            metadata["aborted"] = self.aborted
        metadata.update(self.extra)
        sink.row("metric", self.ts, {
            "metric_type": "request", "metric_name": series, "url": url,
            "user_id": self.user_id, "duration": round(self.duration_ms, 3),
            "metadata": metadata,
            "error_details": {"exception": self.exception or "", "status": self.status}
            if self.error else None,
        })


@dataclass(slots=True)
class TaskRecord:
    """A Celery task (or a block wrapped in ``perfmonitor.capture.track``) with its queries."""

    name: str
    kind: str  # "task"
    ts: float
    duration_ms: float
    queries: Queries
    overflow: Overflow
    exception: str = ""

    def expand(self, sink: Sink) -> None:
        origin = f"{self.kind}:{self.name}"
        failed = bool(self.exception)
        sink.measure("task", self.name, "", self.duration_ms, failed, self.ts)
        counts, totals, sqls, slow = _query_rollups(
            sink, self.queries, self.overflow, origin, self.ts)
        _query_detail_rows(sink, counts=counts, totals=totals, sqls=sqls, slow=slow,
                           origin=origin, url="", ts=self.ts)
        if failed or self.duration_ms >= settings.SLOW_API_MS \
                or random.random() < settings.SAMPLE_RATE:
            query_count, query_time_ms = query_totals(self.queries, self.overflow)
            sink.row("metric", self.ts, {
                "metric_type": "task", "metric_name": self.name, "url": "",
                "duration": round(self.duration_ms, 3),
                "metadata": {"origin": origin, "query_count": query_count,
                             "query_time_ms": round(query_time_ms, 3)},
                "error_details": {"exception": self.exception} if failed else None,
            })


class StandaloneQuery(NamedTuple):
    """A query outside any request or task (management command, shell, thread).

    A plain tuple: the cheapest record to build, one per query, and one the
    garbage collector stops tracking.
    """

    origin: str
    sql: str
    ms: float
    failed: bool
    ts: float

    def expand(self, sink: Sink) -> None:
        expand_standalone(self, sink)


def expand_standalone(query: tuple[str, str, float, bool, float], sink: Sink) -> None:
    origin, sql, ms, failed, ts = query
    counts, totals, sqls, slow = _query_rollups(sink, [(sql, ms, failed)], {}, origin, ts)
    if slow:
        _query_detail_rows(sink, counts=counts, totals=totals, sqls=sqls, slow=slow,
                           origin=origin, url="", ts=ts)
