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
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


Queries = Sequence[tuple[str, float, bool]]
Overflow = dict[str, list[float]]
NO_OVERFLOW: Overflow = {}  # read only

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
                          "CONNECT"})
# Transaction control repeats by design (savepoints in loops): never an N+1.
_NOT_N_PLUS_ONE = ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "SET ")


def query_totals(queries: Queries, overflow: Overflow) -> tuple[int, float]:
    """(query count, total query time in ms) of a capture context's queries."""
    count = len(queries) + int(sum(slot[0] for slot in overflow.values()))
    total = sum(ms for _, ms, _ in queries) + sum(slot[1] for slot in overflow.values())
    return count, total


class QueryStats(NamedTuple):
    """Per-fingerprint figures of one request's (or task's) queries, for detail rows."""

    counts: dict[str, int]
    totals: dict[str, float]
    sqls: dict[str, str]
    slow: list[tuple[str, float]]


def _query_rollups(sink: Sink, queries: Queries, overflow: Overflow, dimension: str,
                   ts: float) -> QueryStats | None:
    """Feed every query into its fingerprint's rollup.

    Returns the per-fingerprint stats when the queries may need detail rows (a slow
    query, or a fingerprint repeated N_PLUS_ONE_THRESHOLD times), else None: most
    requests need neither, and skip building them.
    """
    slow_ms = settings.SLOW_QUERY_MS
    fps, any_slow = sink.measure_queries(queries, dimension, ts, slow_ms)
    if not overflow and len(queries) < settings.N_PLUS_ONE_THRESHOLD:
        # Too few queries for an N+1: only a slow one needs the stats.
        return _query_stats(sink, queries, {}, slow_ms) if any_slow else None
    measure = sink.measure
    fingerprint = sink.fingerprint
    for sql, slot in overflow.items():
        if sql == OTHER_SQL:
            continue
        n, total = int(slot[0]), slot[1]
        failures = int(slot[2]) if len(slot) > 2 else 0
        fp = fingerprint(sql)[0]
        # Past the cap only sums are kept: the mean stands for each query.
        if n > failures:
            measure("query", fp, dimension, total / n, False, ts, weight=n - failures)
        if failures:
            measure("query", fp, dimension, total / n, True, ts, weight=failures)
    # A fingerprint seen N_PLUS_ONE_THRESHOLD times needs that many - 1 repeats; most
    # requests run distinct statements and stop here, without per-fingerprint stats.
    if not (overflow or any_slow
            or len(fps) - len(set(fps)) >= settings.N_PLUS_ONE_THRESHOLD - 1):
        return None
    stats = _query_stats(sink, queries, overflow, slow_ms)
    if stats.slow or max(stats.counts.values(), default=0) >= settings.N_PLUS_ONE_THRESHOLD:
        return stats
    return None


def _query_stats(sink: Sink, queries: Queries, overflow: Overflow, slow_ms: float,
                 ) -> QueryStats:
    fingerprint = sink.fingerprint  # cached: a dict lookup per query
    counts: dict[str, int] = {}
    totals: dict[str, float] = {}
    sqls: dict[str, str] = {}
    slow: list[tuple[str, float]] = []
    for sql, ms, _failed in queries:
        fp, normalized = fingerprint(sql)
        counts[fp] = counts.get(fp, 0) + 1
        totals[fp] = totals.get(fp, 0.0) + ms
        sqls[fp] = normalized
        if ms >= slow_ms:
            slow.append((fp, ms))
    for sql, slot in overflow.items():
        if sql == OTHER_SQL:
            continue
        fp, normalized = fingerprint(sql)
        counts[fp] = counts.get(fp, 0) + int(slot[0])
        totals[fp] = totals.get(fp, 0.0) + slot[1]
        sqls[fp] = normalized
    return QueryStats(counts, totals, sqls, slow)


def _n_plus_one(stats: QueryStats) -> list[dict[str, Any]]:
    threshold = settings.N_PLUS_ONE_THRESHOLD
    sqls, totals = stats.sqls, stats.totals
    hot = [(fp, n) for fp, n in stats.counts.items()
           if n >= threshold and not sqls[fp].upper().startswith(_NOT_N_PLUS_ONE)]
    hot.sort(key=lambda item: item[1], reverse=True)  # stable: ties keep first-seen order
    return [{"fingerprint": fp, "sql": sqls[fp], "count": n, "total_ms": round(totals[fp], 3)}
            for fp, n in hot]


def _query_detail_rows(sink: Sink, stats: QueryStats, *, origin: str, url: str, ts: float,
                       user_id: str = "") -> list[dict[str, Any]]:
    """Raw rows for N+1 hot spots, then slow queries, at most
    MAX_QUERY_DETAILS_PER_REQUEST per request. Returns the N+1 hot spots."""
    cap = settings.MAX_QUERY_DETAILS_PER_REQUEST
    n_plus_one = _n_plus_one(stats)
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
    for fp, ms in sorted(stats.slow, key=lambda s: -s[1]):
        if rows >= cap:
            break
        sink.row("metric", ts, {
            "metric_type": "query", "metric_name": fp, "url": url, "user_id": user_id,
            "duration": round(ms, 3),
            "metadata": {"origin": origin, "sql": stats.sqls[fp], "n_plus_one": fp in flagged,
                         "count": stats.counts[fp], "slow": True},
        })
        rows += 1
    return n_plus_one


class RequestRecord(NamedTuple):
    """One served request, built by the middleware; everything costly happens in expand().

    The middleware pushes a request's fields, the buffer packs them into one plain
    tuple (:func:`pack_request`, a chunk of requests at a time) and marshals it,
    and the flusher makes the record from it (:func:`request_record`). A record
    waits up to a flush interval in the buffer, and what it keeps alive costs the
    host twice:

    - Every small object it holds is freed later, in a batch, by the flusher, and
      the serving thread's own short-lived objects are then given the blocks
      those leave all over the allocator's pools. In the overhead benchmark
      (its README, "what the flusher costs the serving thread") the serving
      thread ran about 100 µs per 10-query request slower when the flusher freed
      records of some 15 objects each (a float per query time, the view's names)
      than when it freed 2-tuples of shared strings: more than the flusher's own
      work. So the numbers travel as one ``bytes`` (the timestamp, the duration
      and each query's time, as doubles), the statements are the strings the
      query hook already interned, and the method and the view's names are shared
      strings (the route cache keeps the first request's): a request keeps alive
      its tuple, one ``bytes``, its path, and a query string or user id when it
      has one.
    - For the garbage collector: the collector stops tracking an exact tuple whose
      items are all plain values (strings, numbers, bytes, None) the first time a
      collection meets it. A dict (even empty), a tuple subclass such as this one,
      or a tuple holding tuples stays tracked for at least one more collection,
      which promotes it; waiting records that reached the oldest generation
      counted towards full collections. So the plain tuple holds the statements
      flattened and None for an empty overflow or no failed query.

    A streaming response's record, finished later, is pushed as a RequestRecord.
    """

    method: str
    route: str
    view: str
    path: str
    query_string: str
    status: int
    ts: float
    duration_ms: float
    queries: Queries
    overflow: Overflow | None  # None when no query went past the cap (see above)
    exception: str = ""
    url_name: str = ""
    user_id: str = ""
    streaming: bool = False
    ttfb_ms: float | None = None
    aborted: bool = False
    extra: dict[str, Any] | None = None  # more metadata for the detail row

    @property
    def error(self) -> bool:
        """Server errors only: an Http404 or PermissionDenied is the site working."""
        return self.status >= 500

    def expand(self, sink: Sink) -> None:
        # One unpacking: a tuple's fields read by name are descriptor calls each.
        (method, route, view, path, query_string, status, ts, duration_ms, queries, overflow,
         exception, url_name, user_id, streaming, ttfb_ms, aborted, extra) = self
        if method not in HTTP_METHODS:
            method = "OTHER"
        series = f"{method} {route}"
        error = self.error  # the rule has one definition
        sink.measure("request", route, method, duration_ms, error, ts)
        overflow = overflow or NO_OVERFLOW
        stats = _query_rollups(sink, queries, overflow, series, ts)
        url = None
        n_plus_one: list[dict[str, Any]] = []
        if stats is not None:
            url = scrub_url(path, query_string)
            n_plus_one = _query_detail_rows(sink, stats, origin=series, url=url, ts=ts,
                                            user_id=user_id)
        is_slow = duration_ms >= settings.SLOW_API_MS
        if not (error or is_slow or n_plus_one or random.random() < settings.SAMPLE_RATE):
            return
        self.detail_row(sink, method, series, overflow, is_slow, n_plus_one, url)

    def detail_row(self, sink: Sink, method: str, series: str, overflow: Overflow,
                   is_slow: bool, n_plus_one: list[dict[str, Any]], url: str | None) -> None:
        """The request's raw row (sampled, slow, failed or with an N+1)."""
        (_, route, view, path, query_string, status, ts, duration_ms, queries, _,
         exception, url_name, user_id, streaming, ttfb_ms, aborted, extra) = self
        error = self.error
        if url is None:
            url = scrub_url(path, query_string)
        query_count, query_time_ms = query_totals(queries, overflow)
        cap = settings.MAX_QUERY_DETAILS_PER_REQUEST
        metadata: dict[str, Any] = {
            "method": method, "route": route, "view": view, "url_name": url_name,
            "status": status, "query_count": query_count,
            "query_time_ms": round(query_time_ms, 3), "slow": is_slow,
            "n_plus_one": [{k: v for k, v in item.items() if k != "sql"}
                           for item in n_plus_one[:cap]],
        }
        if exception:
            metadata["exception"] = exception
        if streaming:
            metadata["streaming"] = True
            metadata["ttfb_ms"] = round(ttfb_ms or 0.0, 3)
            metadata["aborted"] = aborted
        if extra:
            metadata.update(extra)
        sink.row("metric", ts, {
            "metric_type": "request", "metric_name": series, "url": url,
            "user_id": user_id, "duration": round(duration_ms, 3),
            "metadata": metadata,
            "error_details": {"exception": exception or "", "status": status}
            if error else None,
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
        stats = _query_rollups(sink, self.queries, self.overflow, origin, self.ts)
        if stats is not None:
            _query_detail_rows(sink, stats, origin=origin, url="", ts=self.ts)
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
    stats = _query_rollups(sink, [(sql, ms, failed)], {}, origin, ts)
    if stats is not None:
        _query_detail_rows(sink, stats, origin=origin, url="", ts=ts)


STANDALONE_FIELDS = len(StandaloneQuery._fields)


# Plain request tuples: method, route, view, path, query string, status, numbers,
# overflow (None when empty), exception, url name, user id, failed (None when no
# query failed, else one bool per query), then each query's statement. ``numbers``
# is the doubles timestamp, duration (ms), then each query's time (ms).
NUMBERS, FAILED, FIRST_SQL = 6, 11, 12
_structs: dict[int, struct.Struct] = {}


def _doubles(n: int) -> struct.Struct:
    found = _structs.get(n)
    if found is None:  # at most MAX_QUERIES_TRACKED_PER_REQUEST + 2 sizes
        found = _structs[n] = struct.Struct(f"<{n}d")
    return found


def pack_request(method: str, route: str, view: str, path: str, query_string: str,
                 status: int, ts: float, duration_ms: float, queries: Queries,
                 overflow: Overflow | None, exception: str, url_name: str,
                 user_id: str) -> tuple[Any, ...]:
    """The plain tuple the middleware pushes for a request (see RequestRecord)."""
    if queries:
        sqls, times, failed = zip(*queries, strict=True)
        numbers = _doubles(len(times) + 2).pack(ts, duration_ms, *times)
        return (method, route, view, path, query_string, status, numbers, overflow,
                exception, url_name, user_id, failed if True in failed else None, *sqls)
    return (method, route, view, path, query_string, status, _doubles(2).pack(ts, duration_ms),
            overflow, exception, url_name, user_id, None)


def unpack_numbers(numbers: bytes) -> tuple[float, ...]:
    """A plain request's (timestamp, duration, each query's time)."""
    return _doubles(len(numbers) // 8).unpack(numbers)


def request_record(plain: tuple[Any, ...]) -> RequestRecord:
    """The record of a request the middleware pushed as a plain tuple (:func:`pack_request`)."""
    ts, duration_ms, *times = unpack_numbers(plain[NUMBERS])
    sqls = plain[FIRST_SQL:]
    failed = plain[FAILED] or (False,) * len(sqls)
    queries = list(zip(sqls, times, failed, strict=True))
    return RequestRecord(*plain[:6], ts, duration_ms, queries, *plain[7:11], False, None, False,
                         None)


def expand_requests(records: list[tuple[Any, ...]], sink: Sink,
                    between: Callable[[], None] | None = None,
                    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Expand the plain request tuples of a batch together.

    Returns the records left for one-by-one expansion, and those whose raw row could
    not be built (their values are in; like a record whose expand() raised, they count
    as failed).

    The common request (no server error, not slow, no slow or failed query, no query
    past the cap, no N+1 pattern) needs nothing of its own but its values in their
    series. Requests of the same method, route, minute and statements (a "shape":
    a view runs the same statements request after request) are taken together:
    their columns come out of one ``zip`` and go into their series with one
    ``extend`` each, checks run once per column, the N+1 test once per shape, and
    only the sampled ones build a raw row. Everything else is left for
    :func:`expand_plain`, one by one. Values reach their series in shape order, so a
    series fed by several shapes sums them in another order than the requests came
    (the same values; a float sum can differ in its last bits).
    """
    slow_request_ms = settings.SLOW_API_MS
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    left: list[tuple[Any, ...]] = []
    failed: list[tuple[Any, ...]] = []
    head = _doubles(2).unpack_from
    for record in records:
        try:
            if record[7] is None and record[FAILED] is None and record[5] < 500 \
                    and not record[8]:
                ts, duration_ms = head(record[NUMBERS])
                if not duration_ms < slow_request_ms:
                    left.append(record)
                    continue
                key = (record[0], record[1], ts // 60, record[FIRST_SQL:])
                group = groups.get(key)
                if group is None:
                    groups[key] = [record]
                else:
                    group.append(record)
                continue
        except Exception:  # not a request as the middleware makes them: one by one
            pass
        left.append(record)
    if not groups:
        return left, failed
    slow_query_ms = settings.SLOW_QUERY_MS
    sample_rate = settings.SAMPLE_RATE
    draw = random.random
    repeats: dict[tuple[str, ...], bool] = {}
    for (method, route, minute, sqls), group in groups.items():
        try:
            repeated = repeats.get(sqls)
            if repeated is None:
                repeated = repeats[sqls] = _repeats_a_fingerprint(sink, sqls)
            columns = None if repeated else _columns(group)
            if columns is not None and columns[1] and \
                    max(map(max, columns[1])) >= slow_query_ms:  # slow queries: one by one
                fast = []
                for record in group:
                    slowest = max(unpack_numbers(record[NUMBERS])[2:])
                    (left if slowest >= slow_query_ms else fast).append(record)
                group = fast
                columns = _columns(group) if fast else None
                if columns is None:
                    continue
        except Exception:
            columns = None
        if columns is None:
            left.extend(group)
            continue
        durations, times = columns
        if method not in HTTP_METHODS:
            method = "OTHER"
        series = f"{method} {route}"
        sink.extend("request", route, method, minute, durations)
        sink.extend_queries(sqls, times, series, minute)
        for record in group:
            if draw() < sample_rate:
                try:
                    request_record(record).detail_row(sink, method, series, NO_OVERFLOW, False,
                                                      [], None)
                except Exception:
                    failed.append(record)
        if between is not None:
            between()
    return left, failed


def _columns(group: list[tuple[Any, ...]]) -> tuple[Any, list[Any]] | None:
    """(durations, each query's times) of requests of one shape (none of them with a
    failed query), or None when a value is not a finite number (those go one by one)."""
    try:
        unpack = _doubles(len(group[0][NUMBERS]) // 8).unpack
        columns = list(zip(*[unpack(record[NUMBERS]) for record in group], strict=True))
        durations, times = columns[1], columns[2:]
        for column in columns[1:]:
            total = sum(column)
            if total - total != 0.0:  # NaN or infinity somewhere
                return None
        return durations, times
    except Exception:
        return None


def _repeats_a_fingerprint(sink: Sink, sqls: tuple[str, ...]) -> bool:
    """Whether one fingerprint comes N_PLUS_ONE_THRESHOLD times in these statements."""
    threshold = settings.N_PLUS_ONE_THRESHOLD
    if len(sqls) < threshold:
        return False
    counts: dict[str, int] = {}
    for sql in sqls:
        fp = sink.fingerprint(sql)[0]
        counts[fp] = counts.get(fp, 0) + 1
    return max(counts.values()) >= threshold


def expand_plain(record: tuple[Any, ...], sink: Sink) -> None:
    """A record the hooks pushed as a plain tuple: a stray query (5 items) or a request."""
    if len(record) == STANDALONE_FIELDS:
        expand_standalone(record, sink)  # type: ignore[arg-type]
    else:
        request_record(record).expand(sink)
