"""Accepted browser events as buffer records, and what each one expands into.

The collect view validates a batch and pushes one :class:`BrowserEvent` per
event; the events of a batch share one :class:`BeaconContext` (session, user,
device, receipt time), so the request path allocates two small objects per
event and everything else (URL scrubbing, ratings, metadata) happens in the
flusher.

Series (rollups) and raw rows:

========  ==============================  ==================  ============================
type      series kind / name              dimension           raw row
========  ==============================  ==================  ============================
vital     vital / LCP, INP, CLS, ...      page path           WebVital, always
          and vital:<device> / the same
          (mobile, tablet, desktop)
api       api / endpoint path (ids ->     HTTP method         PerformanceMetric "api",
          ``:id``; other origins keep                         sampled (SAMPLE_RATE); slow
          ``//host``), error = status                         (SLOW_API_MS) and failed
          >= 400 or network failure                           calls always
render    render / component              page path           "render", sampled; slow
                                                              (SLOW_RENDER_MS) always
error     error / "Type: message"         page path           "error", always
          fingerprint, value 1
resource  resource / page path            js_transfer, ...    "resource", always; duration
                                          total_transfer      = JS + CSS transfer bytes
memory    memory / page path              ""                  "memory", always; duration
                                                              = used heap bytes
custom    custom / name                   ""                  "custom", sampled; failed
                                                              always
========  ==============================  ==================  ============================

Every raw row's metadata holds the device class, the session's sample rate and
the client's own timestamp (``client_ts``); rows are stamped with the server's
receipt time.

Vitals are deduplicated by (session, client metric id): when the same id is
reported again before the first report was written (one flush interval,
default 1 s, in the same process), only the last value is written, to the
rollup and to the raw rows. A report that arrives after the earlier one was
written is written too; raw rows carry the id in ``metadata.id`` so readers
can keep the latest per id. The JavaScript client reports a vital a second time
only when its value changed after the page was hidden and shown again.
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from perfmonitor.analytics.vitals import DEVICE_VITAL_KINDS, rate
from perfmonitor.capture.urls import page_of, scrub_absolute_url
from perfmonitor.conf import settings

if TYPE_CHECKING:
    from perfmonitor.capture.writer import Sink

RESOURCE_DIMENSIONS = ("js_transfer", "css_transfer", "js_decoded", "css_decoded",
                       "total_transfer")
MAX_TRACKED_VITAL_IDS = 50_000

_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|"
    r"(?=[0-9a-f]*\d)[0-9a-f]{16,})$", re.IGNORECASE)
_VOLATILE = re.compile(r"0x[0-9a-f]+|\d+", re.IGNORECASE)
_URL_QUERY = re.compile(r"(https?://[^\s?#)]+)[?#][^\s):]*")


class BeaconContext:
    """What the events of one batch share."""

    __slots__ = ("session_id", "user_id", "device", "sample_rate", "received_at", "page",
                 "_urls", "_batch_page")

    def __init__(self, *, session_id: str, user_id: str, device: str, sample_rate: float,
                 received_at: float, page: str) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.device = device
        self.sample_rate = sample_rate
        self.received_at = received_at
        self.page = page
        self._urls: dict[str, tuple[str, str]] = {}
        self._batch_page: tuple[str, str] | None = None

    def page_urls(self, event: dict[str, Any]) -> tuple[str, str]:
        """(stored URL, page path) of the page an event belongs to; computed once per batch."""
        raw = event.get("page")
        if not raw:  # most events belong to the batch's page
            found = self._batch_page
            if found is None:
                found = self._batch_page = self._scrub(self.page)
            return found
        found = self._urls.get(raw)
        if found is None:
            found = self._urls[raw] = self._scrub(raw)
        return found

    @staticmethod
    def _scrub(raw: str) -> tuple[str, str]:
        return (scrub_absolute_url(raw), page_of(raw)) if raw else ("", "")

    def metadata(self, event: dict[str, Any]) -> dict[str, Any]:
        meta: dict[str, Any] = {"device": self.device, "sample_rate": self.sample_rate}
        if "ts" in event:
            meta["client_ts"] = event["ts"]
        return meta


class BrowserEvent:
    """One accepted event; ``expand`` writes its series and raw row."""

    __slots__ = ("ctx", "event")

    def __init__(self, ctx: BeaconContext, event: dict[str, Any]) -> None:
        self.ctx = ctx
        self.event = event

    def expand(self, sink: Sink) -> None:
        _EXPANDERS[self.event["type"]](self, sink)

    def _row(self, sink: Sink, metric_type: str, name: str, url: str, duration: float | None,
             metadata: dict[str, Any], error_details: dict[str, Any] | None = None) -> None:
        ctx = self.ctx
        sink.row("metric", ctx.received_at, {
            "session_id": ctx.session_id, "user_id": ctx.user_id, "metric_type": metric_type,
            "metric_name": name[:255], "duration": duration, "url": url, "metadata": metadata,
            "error_details": error_details,
        })


_latest: dict[tuple[str, str], BrowserEvent] = {}


def remember_vital(record: BrowserEvent) -> None:
    """Note the newest report of a vital id (request path: one dict store)."""
    if len(_latest) >= MAX_TRACKED_VITAL_IDS:
        _latest.clear()  # losing dedup for a moment beats unbounded memory
    _latest[(record.ctx.session_id, record.event["id"])] = record


def _expand_vital(record: BrowserEvent, sink: Sink) -> None:
    event, ctx = record.event, record.ctx
    key = (ctx.session_id, event["id"])
    newest = _latest.get(key)
    if newest is not None and newest is not record:
        return  # a later report of the same page load's metric is buffered: it wins
    if newest is record:
        _latest.pop(key, None)
    name, value = event["name"], event["value"]
    url, page = ctx.page_urls(event)
    ts = ctx.received_at
    sink.measure("vital", name, page, value, False, ts)
    device_kind = DEVICE_VITAL_KINDS.get(ctx.device)
    if device_kind is not None:
        sink.measure(device_kind, name, page, value, False, ts)
    meta = ctx.metadata(event)
    meta["id"] = event["id"]
    for extra in ("navigation_type", "target"):
        if extra in event:
            meta[extra] = event[extra]
    sink.row("vital", ts, {
        "session_id": ctx.session_id, "user_id": ctx.user_id, "metric_name": name,
        "value": value, "rating": rate(name, value), "url": url, "metadata": meta,
    })


def endpoint_name(url: str, page_url: str) -> str:
    """Series name of an API call: its path with ids as ':id'; ``//host`` for other origins."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid>"
    segments = [":id" if _ID_SEGMENT.match(s) else s for s in (parts.path or "/").split("/")]
    path = "/".join(segments) or "/"
    if parts.netloc:
        try:
            same_origin = urlsplit(page_url).netloc == parts.netloc
        except ValueError:
            same_origin = False
        if not same_origin:
            return f"//{parts.hostname or ''}{path}"[:255]
    return path[:255]


_api_urls: dict[tuple[str, str], tuple[str, str]] = {}
_api_urls_allowlist: list[Any] = []


def api_urls(url: str, page_url: str) -> tuple[str, str]:
    """(stored URL, series name) of an API call; memoized: pages call the same endpoints."""
    global _api_urls_allowlist
    allowlist = settings.URL_QUERY_ALLOWLIST
    if allowlist is not _api_urls_allowlist or len(_api_urls) > 10_000:
        _api_urls.clear()  # settings changed (or the cache is full): start over
        _api_urls_allowlist = allowlist
    key = (url, page_url)
    found = _api_urls.get(key)
    if found is None:
        found = _api_urls[key] = (scrub_absolute_url(url), endpoint_name(url, page_url))
    return found


def _keep_detail(slow: bool, failed: bool) -> bool:
    return slow or failed or random.random() < settings.SAMPLE_RATE


def _expand_api(record: BrowserEvent, sink: Sink) -> None:
    event, ctx = record.event, record.ctx
    status = event["status"]
    failed = status >= 400 or status == 0 or event.get("failed", False)
    method = event["method"]
    stored_url, name = api_urls(event["url"], event.get("page") or ctx.page)
    duration = event["duration"]
    sink.measure("api", name, method, duration, failed, ctx.received_at)
    slow = duration >= settings.SLOW_API_MS
    if not _keep_detail(slow, failed):
        return  # sampled away: the rollup has it, no row and no metadata to build
    page = ctx.page_urls(event)[1]
    meta = ctx.metadata(event)
    meta.update(page=page, method=method, status=status, slow=slow)
    for extra in ("size", "cache", "failed"):
        if extra in event:
            meta[extra] = event[extra]
    record._row(sink, "api", name, stored_url, duration, meta,
                {"status": status, "failed": bool(event.get("failed"))} if failed else None)


def _expand_render(record: BrowserEvent, sink: Sink) -> None:
    event, ctx = record.event, record.ctx
    url, page = ctx.page_urls(event)
    duration = event["duration"]
    sink.measure("render", event["component"], page, duration, False, ctx.received_at)
    slow = duration >= settings.SLOW_RENDER_MS
    if not _keep_detail(slow, False):
        return
    meta = ctx.metadata(event)
    meta.update(page=page, slow=slow)
    if "phase" in event:
        meta["phase"] = event["phase"]
    record._row(sink, "render", event["component"], url, duration, meta)


def error_fingerprint(error_type: str, message: str) -> str:
    """Short series name grouping the same error: numbers and addresses blanked."""
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return f"{error_type}: {_VOLATILE.sub('N', first_line)}"[:120]


def _expand_error(record: BrowserEvent, sink: Sink) -> None:
    event, ctx = record.event, record.ctx
    url, page = ctx.page_urls(event)
    error_type = event.get("error_type") or "Error"
    name = error_fingerprint(error_type, event["message"])
    sink.measure("error", name, page, 1.0, True, ctx.received_at)
    details: dict[str, Any] = {"type": error_type, "message": event["message"],
                               "kind": event.get("kind", "error")}
    if "source" in event:
        details["source"] = scrub_absolute_url(event["source"])
    for extra in ("line", "column"):
        if extra in event:
            details[extra] = event[extra]
    if "stack" in event:
        details["stack"] = _URL_QUERY.sub(r"\1", event["stack"])
    meta = ctx.metadata(event)
    meta["page"] = page
    record._row(sink, "error", name, url, None, meta, details)


def _expand_resource(record: BrowserEvent, sink: Sink) -> None:
    event, ctx = record.event, record.ctx
    url, page = ctx.page_urls(event)
    for dimension in RESOURCE_DIMENSIONS:
        sink.measure("resource", page, dimension, event[dimension], False, ctx.received_at)
    bundle = event["js_transfer"] + event["css_transfer"]
    meta = ctx.metadata(event)
    meta.update({d: event[d] for d in RESOURCE_DIMENSIONS})
    meta.update(page=page, bundle_bytes=bundle, large=bundle > settings.BUNDLE_SIZE_BYTES)
    if "count" in event:
        meta["count"] = event["count"]
    record._row(sink, "resource", page, url, bundle, meta)


def _expand_memory(record: BrowserEvent, sink: Sink) -> None:
    event, ctx = record.event, record.ctx
    url, page = ctx.page_urls(event)
    sink.measure("memory", page, "", event["used"], False, ctx.received_at)
    meta = ctx.metadata(event)
    meta["page"] = page
    for extra in ("total", "limit"):
        if extra in event:
            meta[extra] = event[extra]
    record._row(sink, "memory", page, url, event["used"], meta)


def _expand_custom(record: BrowserEvent, sink: Sink) -> None:
    event, ctx = record.event, record.ctx
    failed = event.get("error", False)
    sink.measure("custom", event["name"], "", event["value"], failed, ctx.received_at)
    if not _keep_detail(False, failed):
        return
    url, page = ctx.page_urls(event)
    meta = ctx.metadata(event)
    meta["page"] = page
    for extra in ("unit", "metadata"):
        if extra in event:
            meta[extra] = event[extra]
    record._row(sink, "custom", event["name"], url, event["value"], meta,
                {"failed": True} if failed else None)


_EXPANDERS = {
    "vital": _expand_vital, "api": _expand_api, "render": _expand_render,
    "error": _expand_error, "resource": _expand_resource, "memory": _expand_memory,
    "custom": _expand_custom,
}
