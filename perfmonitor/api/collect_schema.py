"""OpenAPI description of the collect endpoint, generated from the validation tables.

The event schemas come from :mod:`perfmonitor.beacons.schema`, the same tables
the endpoint validates with, and are registered as named components
(``BeaconBatch``, ``VitalEvent``...).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ComponentRegistry, ResolvedComponent
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema

from perfmonitor.beacons.schema import (
    BATCH_FIELDS,
    COMMON_FIELDS,
    EVENT_FIELDS,
    openapi_field,
    openapi_object,
)

_EVENT_DOCS = {
    "vital": "A Web Vital of one page load (web-vitals semantics). Rated on the server.",
    "api": "A fetch or XMLHttpRequest call made by the page.",
    "render": "A component render timed by trackRender or useRenderTracking.",
    "error": "An uncaught error or unhandled promise rejection.",
    "resource": "Resource sizes of one page (bundle size), summed from Resource Timing.",
    "memory": "JS heap use of one page (performance.memory, where the browser has it).",
    "custom": "Any named measurement (trackAsync, user code).",
    "journey": "A user-journey transition; the journeys module records it.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def component_name(event_type: str) -> str:
    return f"{event_type.capitalize()}Event"


def components() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for event_type, fields in EVENT_FIELDS.items():
        schema = openapi_object(COMMON_FIELDS + fields, _EVENT_DOCS[event_type])
        schema["properties"]["type"] = {"type": "string", "enum": [event_type]}
        out[component_name(event_type)] = schema
    batch = openapi_object(BATCH_FIELDS, "One beacon: up to COLLECT_MAX_EVENTS events (100) "
                           "and COLLECT_MAX_BYTES (64 KiB).")
    batch["properties"]["events"] = {
        "type": "array", "minItems": 1, "maxItems": 100,
        "items": {
            "oneOf": [_ref(component_name(t)) for t in EVENT_FIELDS],
            "discriminator": {"propertyName": "type", "mapping": {
                t: f"#/components/schemas/{component_name(t)}" for t in EVENT_FIELDS}},
        },
    }
    batch["required"] = ["events", *batch["required"]]
    out["BeaconBatch"] = batch
    out["CollectResult"] = {
        "type": "object",
        "description": "Valid events are kept even when others in the batch were rejected.",
        "properties": {
            "accepted": {"type": "integer", "description": "Events kept."},
            "rejected": {"type": "integer", "description": "Events refused."},
            "errors": {"type": "array", "items": {
                "type": "object",
                "properties": {"index": {"type": "integer"}, "reason": {"type": "string"}},
                "required": ["index", "reason"],
            }},
            "ignored": {"type": "string", "description": "Why nothing was stored (bots)."},
        },
        "required": ["accepted", "rejected", "errors"],
    }
    out["CollectError"] = {
        "type": "object",
        "description": "A problem with the whole batch; nothing was stored.",
        "properties": {
            "error": {"type": "string", "description": "Stable code, e.g. payload_too_large."},
            "detail": {"type": "string", "description": "What is wrong, in words."},
            "retry_after": {"type": "integer", "description": "Seconds (429 only)."},
        },
        "required": ["error", "detail"],
    }
    return out


class CollectAutoSchema(AutoSchema):
    """Registers the beacon components before describing the operation."""

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str,
                      registry: ComponentRegistry) -> dict[str, Any] | None:
        for name, schema in components().items():
            registry.register_on_missing(ResolvedComponent(
                name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name))
        return super().get_operation(path, path_regex, path_prefix, method, registry)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=_ref("CollectError"), description=description)


collect_schema = extend_schema(
    operation_id="collect_beacons",
    summary="Receive a batch of browser beacons",
    description=(
        "Anonymous and CSRF-exempt. The body is a BeaconBatch sent as application/json or "
        "text/plain (navigator.sendBeacon). Each event is validated on its own: invalid events "
        "are listed in `errors` by index, valid ones are kept. Rows use the server's receipt "
        "time; URLs lose their query string and fragment; vitals are rated on the server and "
        "deduplicated by id. Known bots get 202 with nothing stored. Field reference: "
        + "; ".join(f"{f.name}: {openapi_field(f).get('description', '')}" for f in BATCH_FIELDS)
    ),
    request={"application/json": _ref("BeaconBatch"), "text/plain": _ref("BeaconBatch")},
    responses={
        202: OpenApiResponse(response=_ref("CollectResult"), description="Batch processed."),
        400: _error("Not JSON, not an object, events missing or empty, bad batch field."),
        403: _error("Origin not in ALLOWED_ORIGINS, or write key missing / wrong."),
        413: _error("Body over COLLECT_MAX_BYTES or more than COLLECT_MAX_EVENTS events."),
        415: _error("Content-Type is neither application/json nor text/plain."),
        429: _error("This client sent more than COLLECT_THROTTLE_RATE batches."),
    },
    auth=[],
    tags=["collect"],
    examples=[OpenApiExample("Vitals and an API call", request_only=True, value={
        "session_id": "5f0c2d0e-6c1b-4d3e-9a57-0f1e2d3c4b5a", "sample_rate": 1.0,
        "page": "https://lms.example.com/courses/12/",
        "events": [
            {"type": "vital", "name": "LCP", "value": 1834.2, "id": "v1-1718000000000-42",
             "navigation_type": "navigate", "ts": 1718000001834},
            {"type": "api", "url": "https://lms.example.com/api/courses/12/lessons",
             "method": "GET", "status": 200, "duration": 84.5, "size": 5120},
        ],
    })],
)
