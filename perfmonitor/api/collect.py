"""``POST api/v1/collect``: batched beacons from the browser client.

Anonymous and CSRF-exempt; accepts ``application/json`` and ``text/plain``
(what ``navigator.sendBeacon`` sends for a string). Whole-batch problems get a
4xx with ``{"error": code, "detail": message}``; event problems are listed by
index while the valid events of the batch are kept (``202``). Nothing here
writes to the database: accepted events go to the capture buffer.

Order of checks: origin allow-list (403), throttle (429), bot user agents
(202, nothing stored), content type (415), size (413), JSON (400), batch shape
(400 / 413 for too many events), write key (403), then each event.
"""

from __future__ import annotations

import hmac
import importlib
import json
import time
from collections.abc import Callable
from typing import Any

import orjson
from django.core.cache import caches
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from perfmonitor.api.collect_schema import CollectAutoSchema, collect_schema
from perfmonitor.beacons.clients import client_key, device_class, is_bot, parse_rate
from perfmonitor.beacons.records import BeaconContext, BrowserEvent, remember_vital
from perfmonitor.beacons.schema import BATCH_FIELDS, Invalid, accept_event, clean_fields
from perfmonitor.capture import buffer as buffer_module
from perfmonitor.conf import settings

MEDIA_TYPES = ("application/json", "text/plain")


class BatchProblem(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_batch"

    def __init__(self, detail: str, code: str | None = None, status_code: int | None = None):
        super().__init__(detail, code)
        self.error_code = code or self.default_code
        if status_code is not None:
            self.status_code = status_code


def _too_large(detail: str, code: str = "payload_too_large") -> BatchProblem:
    return BatchProblem(detail, code, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


def _forbidden(detail: str, code: str) -> BatchProblem:
    return BatchProblem(detail, code, status.HTTP_403_FORBIDDEN)


class BeaconJSONParser(BaseParser):
    """JSON with a hard byte limit, whatever Content-Length claims."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        limit = settings.COLLECT_MAX_BYTES
        return parse_body(stream.read(limit + 1) if stream is not None else b"")


def parse_body(raw: bytes) -> Any:
    """The JSON batch in ``raw``, with the byte limit; raises BatchProblem.

    orjson parses standard JSON; whatever it refuses (NaN and Infinity literals, integers
    beyond 64 bits, lone surrogates, deep nesting, broken text) is parsed again by the
    standard library, so the accepted language and every message stay those of
    ``json.loads``: NaN and Infinity reach the per-event checks, which reject them by event.
    (One difference: an integer beyond 64 bits inside a metadata object reads as a float;
    every numeric field's bound is far below that.)
    """
    limit = settings.COLLECT_MAX_BYTES
    if len(raw) > limit:
        raise _too_large(f"body is larger than {limit} bytes "
                         "(PERFMONITOR['COLLECT_MAX_BYTES'])")
    if not raw:
        raise BatchProblem("body is empty", "empty_body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BatchProblem("body is not UTF-8", "invalid_json") from None
    except json.JSONDecodeError as exc:
        raise BatchProblem(f"body is not valid JSON: {exc.msg} at character {exc.pos}",
                           "invalid_json") from None
    except (RecursionError, ValueError):
        raise BatchProblem("body is not valid JSON: too deeply nested or a number too large",
                           "invalid_json") from None


class BeaconTextParser(BeaconJSONParser):
    """navigator.sendBeacon(url, string) sends text/plain: the text is the JSON batch."""

    media_type = "text/plain"


class FirstRendererNegotiation(BaseContentNegotiation):
    """Always JSON: a beacon's Accept header must never turn into a 406."""

    def select_parser(self, request: Request, parsers: list[BaseParser]) -> BaseParser | None:
        for parser in parsers:
            if request.content_type.split(";")[0].strip().lower() == parser.media_type:
                return parser
        return None

    def select_renderer(self, request: Request, renderers: list[Any],
                        format_suffix: str | None = None) -> tuple[Any, str]:
        return renderers[0], renderers[0].media_type


def _origin_of_referer(referer: str) -> str:
    parts = referer.split("/", 3)
    return "/".join(parts[:3]) if len(parts) >= 3 and parts[0].endswith(":") else ""


def request_origin(request: Request) -> str:
    meta = request._request.META
    return (meta.get("HTTP_ORIGIN") or
            _origin_of_referer(meta.get("HTTP_REFERER", ""))).rstrip("/").lower()


def origin_allowed(request: Request, origin: str) -> bool:
    allowed = settings.ALLOWED_ORIGINS
    if not allowed or not origin:
        return True  # no allow-list, or not sent from a page (servers, curl)
    if origin in {o.rstrip("/").lower() for o in allowed}:
        return True
    try:  # the site's own pages are always allowed
        return origin == f"{request.scheme}://{request.get_host()}".lower()
    except Exception:
        return False


class AllowedOrigin(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        origin = request_origin(request)
        if not origin_allowed(request, origin):
            raise _forbidden(f"origin {origin} is not in PERFMONITOR['ALLOWED_ORIGINS']",
                             "origin_not_allowed")
        return True


class CollectThrottle(BaseThrottle):
    """Fixed-window counter per client (COLLECT_THROTTLE_RATE), keyed by a hash of the address.

    The count lives in the default cache, shared by every web process (atomic increments
    on Redis and memcached). Each process adds its batches to it in steps of a tenth of
    the limit rather than one cache call per batch: a client is refused once the shared
    count plus this process's unsent steps exceed the limit, and a refusal is always
    decided on a fresh shared count. So small limits stay exact, and a client spread over
    N processes gets at most N tenths of the limit more. When the cache fails the beacon
    is let through: throttling protects, it must not break.
    """

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        parsed = parse_rate(settings.COLLECT_THROTTLE_RATE)
        if parsed is None:
            return True
        limit, period = parsed
        now = time.time()
        window = int(now // period)
        # DRF's get_ident reads only META: the Django request skips the Request proxy.
        key = f"perfmonitor:collect:{client_key(self.get_ident(request._request))}:{window}"
        self._wait = (window + 1) * period - now
        counts = _local_counts.get(key)
        if counts is None:
            if len(_local_counts) >= MAX_LOCAL_THROTTLE_KEYS:
                _local_counts.clear()  # old windows and idle clients: their steps are small
            counts = _local_counts[key] = [0, 0]  # [not yet in the cache, last shared count]
        counts[0] += 1
        if counts[0] < max(1, limit // 10) and counts[0] + counts[1] <= limit:
            return True
        step = counts[0]
        try:
            shared = _add_to_cache(key, step, period)
        except Exception as exc:
            buffer_module.buffer.count_internal_error("collect throttle", exc)
            return True
        counts[0] -= step  # (other threads may have counted meanwhile)
        counts[1] = shared
        return shared + counts[0] <= limit

    def wait(self) -> float | None:
        return self._wait


MAX_LOCAL_THROTTLE_KEYS = 10_000
_local_counts: dict[str, list[int]] = {}


def _add_to_cache(key: str, step: int, period: int) -> int:
    cache = caches["default"]
    try:
        return int(cache.incr(key, step))
    except ValueError:  # first step of this client in this window
        return step if cache.add(key, step, period + 1) else int(cache.incr(key, step))


def _journey_handler() -> Callable[[dict[str, Any], str, str], str | None] | None:
    try:
        module = importlib.import_module("perfmonitor.journeys")
    except ImportError:
        return None
    return getattr(module, "handle_browser_event", None)


def _user_id(request: Request) -> str:
    """The logged-in user's pk, looked up only when the beacon carries a session cookie."""
    from django.conf import settings as django_settings
    from django.contrib.auth import get_user

    django_request = request._request
    if (django_settings.SESSION_COOKIE_NAME not in django_request.COOKIES
            or not hasattr(django_request, "session")):
        return ""
    try:
        user = get_user(django_request)
        return str(user.pk) if user.is_authenticated else ""
    except Exception:
        return ""


class CollectView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowedOrigin]
    throttle_classes = [CollectThrottle]
    parser_classes = [BeaconJSONParser, BeaconTextParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation
    perfmonitor_ignore = True  # the middleware does not time the beacons themselves
    schema = CollectAutoSchema()

    def perform_authentication(self, request: Request) -> None:
        pass  # anonymous endpoint; the session is read only when a cookie is sent (_user_id)

    @collect_schema
    def post(self, request: Request) -> Response:
        meta = request._request.META
        if is_bot(meta.get("HTTP_USER_AGENT", "")):
            return Response({"accepted": 0, "rejected": 0, "errors": [],
                             "ignored": "bot user agent: nothing was stored"}, status=202)
        _check_content(request)
        batch = _clean_batch(parse_body(_read_body(request)))
        _check_write_key(request, batch)
        ctx = BeaconContext(
            session_id=batch["session_id"], user_id=_user_id(request),
            device=batch.get("device") or device_class(meta.get("HTTP_USER_AGENT", "")),
            sample_rate=batch.get("sample_rate", 1.0), received_at=time.time(),
            page=batch.get("page", ""),
        )
        accepted, errors = _accept_events(batch["events"], ctx)
        # Rendered here rather than by DRF's renderer: the answer is always this small JSON.
        return HttpResponse(orjson.dumps({"accepted": accepted, "rejected": len(errors),
                                          "errors": errors}),
                            status=202, content_type="application/json")

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = Response(status=204)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type, X-Perfmonitor-Key"
        response["Access-Control-Max-Age"] = "86400"
        return response

    def finalize_response(self, request: Request, response: Response, *args: Any,
                          **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        origin = request._request.META.get("HTTP_ORIGIN", "")
        if origin and origin_allowed(request, origin.rstrip("/").lower()):
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Credentials"] = "true"
            response["Vary"] = "Origin"
        return response

    def handle_exception(self, exc: Exception) -> Response:
        if not isinstance(exc, APIException):
            # A defect of ours must not look like the client's fault nor become a 500.
            buffer_module.buffer.count_internal_error("collect", exc)
            exc = BatchProblem("the batch could not be processed", "unprocessable")
        response = super().handle_exception(exc)
        code = getattr(exc, "error_code", None) or _drf_code(exc)
        detail = exc.detail if isinstance(exc, APIException) else str(exc)
        response.data = {"error": code, "detail": str(detail)}
        wait = getattr(exc, "wait", None)
        if wait is not None:
            response.data["retry_after"] = int(wait) + 1
            response.data["detail"] = (f"too many beacons from this client; retry in "
                                       f"{int(wait) + 1} s (PERFMONITOR['COLLECT_THROTTLE_RATE'])")
        return response


def _drf_code(exc: Exception) -> str:
    codes = exc.get_codes() if isinstance(exc, APIException) else "error"
    return codes if isinstance(codes, str) else "invalid_batch"


def _check_content(request: Request) -> None:
    media_type = (request.content_type or "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        shown = media_type or "none"
        raise BatchProblem(f"Content-Type must be application/json or text/plain, not {shown}",
                           "unsupported_media_type", status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
    limit = settings.COLLECT_MAX_BYTES
    try:
        length = int(request._request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise _too_large(f"body is {length} bytes; the limit is {limit} "
                         "(PERFMONITOR['COLLECT_MAX_BYTES'])")
    if length <= 0:  # DRF reads nothing without a Content-Length
        raise BatchProblem("body is empty (or sent without Content-Length)", "empty_body")


def _read_body(request: Request) -> bytes:
    """The raw body, read once (DRF's parsers are not involved: one JSON parse, no copies).

    _check_content has bounded Content-Length; parse_body checks the bytes actually read.
    """
    try:
        return request._request.body
    except RequestDataTooBig:  # the host's DATA_UPLOAD_MAX_MEMORY_SIZE is below ours
        raise _too_large("body is larger than the site's DATA_UPLOAD_MAX_MEMORY_SIZE") from None


def _clean_batch(body: Any) -> dict[str, Any]:
    if type(body) is not dict:
        raise BatchProblem("body must be a JSON object with an events array", "invalid_batch")
    events = body.get("events")
    if events is None:
        raise BatchProblem("events is required", "invalid_batch")
    if type(events) is not list:
        raise BatchProblem("events must be an array", "invalid_batch")
    if not events:
        raise BatchProblem("events is empty", "invalid_batch")
    limit = settings.COLLECT_MAX_EVENTS
    if len(events) > limit:
        raise _too_large(f"{len(events)} events in one batch; the limit is {limit} "
                         "(PERFMONITOR['COLLECT_MAX_EVENTS'])", "too_many_events")
    batch: dict[str, Any] = {"events": events}
    try:
        clean_fields(BATCH_FIELDS, body, batch)
    except Invalid as exc:
        raise BatchProblem(str(exc), "invalid_batch") from None
    if not batch["session_id"]:
        raise BatchProblem("session_id must not be empty", "invalid_batch")
    return batch


def _check_write_key(request: Request, batch: dict[str, Any]) -> None:
    expected = settings.WRITE_KEY
    if not expected:
        return
    given = batch.get("write_key") or request._request.META.get("HTTP_X_PERFMONITOR_KEY", "")
    if not given:
        raise _forbidden("write_key is required (PERFMONITOR['WRITE_KEY'] is set)",
                         "write_key_required")
    if not hmac.compare_digest(str(given).encode(), str(expected).encode()):
        raise _forbidden("write_key is not valid", "write_key_invalid")


def _accept_events(events: list[Any], ctx: BeaconContext) -> tuple[int, list[dict[str, Any]]]:
    accepted = 0
    errors: list[dict[str, Any]] = []
    push = buffer_module.push
    for index, raw in enumerate(events):
        try:
            event = accept_event(raw)
        except Invalid as exc:
            errors.append({"index": index, "reason": str(exc)})
            continue
        kind = event["type"]
        if kind == "journey":
            reason = _record_journey(event, ctx)
            if reason:
                errors.append({"index": index, "reason": reason})
                continue
        else:
            record = BrowserEvent(ctx, event)
            if kind == "vital":
                remember_vital(record)
            push(record)
        accepted += 1
    return accepted, errors


def _record_journey(event: dict[str, Any], ctx: BeaconContext) -> str | None:
    handler = _journey_handler()
    if handler is None:
        return "journeys not available"
    try:
        return handler(event, ctx.session_id, ctx.user_id)
    except Exception as exc:
        buffer_module.buffer.count_internal_error("collect journey", exc)
        return "journey could not be recorded"
