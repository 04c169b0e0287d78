"""The beacon format: one table of fields per event type, used to validate and to document.

The collect endpoint validates every event against these tables by hand rather
than with DRF serializers: a batch holds up to 100 events and the endpoint must
take tens of thousands of events per second, so each check is a type test and
a comparison. The same tables produce the OpenAPI components
(:func:`openapi_components`), so the documentation cannot drift from the code.

Rules common to every number: a JSON number (``true`` and ``"12"`` are not
numbers), finite (NaN and Infinity are rejected), within the field's bounds.
Unknown keys are ignored, never stored. Vitals follow DESIGN §Web Vitals:
unknown names, negatives, FCP/LCP/TTFB of 10 minutes or more, INP or FID over
60 s and CLS over 10 are rejected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perfmonitor.analytics.vitals import VITALS

NUMBER, INTEGER, STRING, BOOLEAN, OBJECT = "number", "integer", "string", "boolean", "object"
_NUMERIC = (int, float)
MAX_METADATA_BYTES = 2048
MAX_URL = 2000
TEN_MINUTES_MS = 600_000.0
MAX_BYTES_VALUE = 1e12  # a terabyte: larger sizes are not real pages


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str
    required: bool = False
    minimum: float | None = 0.0
    maximum: float | None = None
    max_length: int = 255
    truncate: bool = False  # long strings are cut instead of rejected (messages, stacks)
    choices: tuple[str, ...] = ()
    doc: str = ""


def _ms(name: str, doc: str, required: bool = True) -> Field:
    return Field(name, NUMBER, required, 0.0, TEN_MINUTES_MS, doc=doc)


def _bytes(name: str, doc: str, required: bool = True) -> Field:
    return Field(name, INTEGER, required, 0.0, MAX_BYTES_VALUE, doc=doc)


NAVIGATION_TYPES = ("navigate", "reload", "back-forward", "back-forward-cache", "prerender",
                    "restore")
JOURNEY_ACTIONS = ("start", "step", "complete", "fail", "abandon")
DEVICE_CLASSES = ("mobile", "tablet", "desktop")
EVENT_TYPES = ("vital", "api", "render", "error", "resource", "memory", "custom", "journey")

COMMON_FIELDS: tuple[Field, ...] = (
    Field("type", STRING, True, choices=EVENT_TYPES, doc="Event type."),
    Field("ts", NUMBER, False, 0.0, 1e14, doc="Client time, epoch ms. Kept as metadata; rows "
          "are stamped with the server's receipt time."),
    Field("page", STRING, False, max_length=MAX_URL, doc="Page URL the event belongs to; "
          "defaults to the batch's page. Stored without query string and fragment "
          "(except allow-listed parameters)."),
)

EVENT_FIELDS: dict[str, tuple[Field, ...]] = {
    "vital": (
        Field("name", STRING, True, choices=tuple(VITALS), doc="LCP, INP, CLS, FCP, TTFB or "
              "FID (legacy: stored and rated, never scored)."),
        Field("value", NUMBER, True, 0.0, TEN_MINUTES_MS, doc="Milliseconds (CLS: unitless). "
              "Limits: FCP/LCP/TTFB < 600000, INP/FID <= 60000, CLS <= 10."),
        Field("id", STRING, True, max_length=128, doc="Unique per page load and metric; the "
              "server keeps the last value reported for an id."),
        Field("navigation_type", STRING, False, choices=NAVIGATION_TYPES),
        Field("target", STRING, False, max_length=255, truncate=True,
              doc="Selector of the element behind the value (LCP element, INP target)."),
    ),
    "api": (
        Field("url", STRING, True, max_length=MAX_URL, doc="Request URL; stored without query "
              "string, and the series name is its path with ids replaced by ':id'."),
        Field("method", STRING, False, max_length=16, doc="HTTP method, default GET."),
        Field("status", INTEGER, True, 0.0, 599.0, doc="HTTP status; 0 for a network failure."),
        _ms("duration", "Milliseconds from the call to the response (or failure)."),
        _bytes("size", "Response size in bytes.", required=False),
        Field("cache", BOOLEAN, False, doc="Served from a cache."),
        Field("failed", BOOLEAN, False, doc="Network failure or abort."),
    ),
    "render": (
        Field("component", STRING, True, doc="Component name."),
        _ms("duration", "Render time in milliseconds."),
        Field("phase", STRING, False, max_length=32, doc="mount, update, ..."),
    ),
    "error": (
        Field("message", STRING, True, max_length=1000, truncate=True),
        Field("error_type", STRING, False, max_length=100, truncate=True,
              doc="Error class name (TypeError...); default Error."),
        Field("source", STRING, False, max_length=MAX_URL, doc="Script URL."),
        Field("line", INTEGER, False, 0.0, 1e9),
        Field("column", INTEGER, False, 0.0, 1e9),
        Field("stack", STRING, False, max_length=4000, truncate=True),
        Field("kind", STRING, False, choices=("error", "unhandledrejection")),
    ),
    "resource": (
        _bytes("js_transfer", "JavaScript bytes over the network."),
        _bytes("css_transfer", "CSS bytes over the network."),
        _bytes("js_decoded", "JavaScript bytes after decompression."),
        _bytes("css_decoded", "CSS bytes after decompression."),
        _bytes("total_transfer", "All resources and the document, bytes over the network."),
        Field("count", INTEGER, False, 0.0, 1e6, doc="Number of resources."),
    ),
    "memory": (
        _bytes("used", "Used JS heap bytes (performance.memory.usedJSHeapSize)."),
        _bytes("total", "Total JS heap bytes.", required=False),
        _bytes("limit", "JS heap size limit.", required=False),
    ),
    "custom": (
        Field("name", STRING, True),
        Field("value", NUMBER, True, 0.0, 1e12),
        Field("unit", STRING, False, max_length=16),
        Field("error", BOOLEAN, False, doc="The measured operation failed."),
        Field("metadata", OBJECT, False, doc=f"Small JSON object (<= {MAX_METADATA_BYTES} "
              "bytes serialized)."),
    ),
    "journey": (
        Field("action", STRING, True, choices=JOURNEY_ACTIONS),
        Field("journey_id", STRING, True, max_length=64, doc="Id the client chose at start."),
        Field("journey_type", STRING, False, max_length=64, doc="Required for start "
              "(login, class_booking, ...)."),
        Field("step", STRING, False, max_length=128, doc="Required for step; for fail, the "
              "step where the journey failed (default: the last step reached)."),
        Field("reason", STRING, False, max_length=255, truncate=True,
              doc="Why a journey failed or was abandoned."),
        Field("metadata", OBJECT, False, doc=f"Small JSON object (<= {MAX_METADATA_BYTES} "
              "bytes serialized): kept with the step, or, on complete, fail and abandon, "
              "added to the journey's metadata (keys it already has are kept)."),
    ),
}

BATCH_FIELDS: tuple[Field, ...] = (
    Field("session_id", STRING, True, max_length=64, doc="Browser session id (random, per tab "
          "session)."),
    Field("sample_rate", NUMBER, False, 0.0, 1.0, doc="Share of sessions that report; stored on "
          "every event. Default 1."),
    Field("page", STRING, False, max_length=MAX_URL, doc="URL of the page that sent the batch."),
    Field("device", STRING, False, choices=DEVICE_CLASSES, doc="Device class; derived from the "
          "User-Agent when absent."),
    Field("write_key", STRING, False, max_length=128, doc="Public write key, when the site "
          "requires one (PERFMONITOR['WRITE_KEY'])."),
)

_VITAL_LIMITS = {name: (spec.max_value, name in ("FCP", "LCP", "TTFB"))
                 for name, spec in VITALS.items()}


class Invalid(Exception):
    """A field broke a rule; the message names the field and the rule."""


def _check(field: Field, value: Any) -> Any:
    kind = field.kind
    if kind in (NUMBER, INTEGER):
        if type(value) not in _NUMERIC:
            raise Invalid(f"{field.name} must be a number, not {_json_type(value)}")
        if not math.isfinite(value):
            raise Invalid(f"{field.name} must be a finite number")
        if kind == INTEGER and value != int(value):
            raise Invalid(f"{field.name} must be an integer")
        if field.minimum is not None and value < field.minimum:
            raise Invalid(f"{field.name} must be >= {field.minimum:g}")
        if field.maximum is not None and value > field.maximum:
            raise Invalid(f"{field.name} must be <= {field.maximum:g}")
        return int(value) if kind == INTEGER else value
    if kind == STRING:
        if type(value) is not str:
            raise Invalid(f"{field.name} must be a string, not {_json_type(value)}")
        if field.choices and value not in field.choices:
            raise Invalid(f"{field.name} must be one of {', '.join(field.choices)}")
        if len(value) > field.max_length:
            if not field.truncate:
                raise Invalid(f"{field.name} is longer than {field.max_length} characters")
            value = value[:field.max_length]
        return value
    if kind == BOOLEAN:
        if type(value) is not bool:
            raise Invalid(f"{field.name} must be true or false, not {_json_type(value)}")
        return value
    if type(value) is not dict:
        raise Invalid(f"{field.name} must be an object, not {_json_type(value)}")
    if len(json.dumps(value, default=str)) > MAX_METADATA_BYTES:
        raise Invalid(f"{field.name} is larger than {MAX_METADATA_BYTES} bytes")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "an array", dict: "an object",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _fast_check(field: Field) -> Callable[[Any], Any]:
    """A checker for the common case; anything unusual goes to _check for the exact message."""
    kind = field.kind
    if kind in (NUMBER, INTEGER):
        low = -math.inf if field.minimum is None else field.minimum
        high = math.inf if field.maximum is None else field.maximum
        if kind == INTEGER:
            def check_integer(value: Any) -> Any:
                if type(value) is int and low <= value <= high:
                    return value
                return _check(field, value)
            return check_integer

        def check_number(value: Any) -> Any:
            # NaN fails every comparison and infinities fail the bounds: both fall through.
            if (type(value) is float or type(value) is int) and low <= value <= high < math.inf:
                return value
            return _check(field, value)
        return check_number
    if kind == STRING:
        choices = frozenset(field.choices)
        limit = field.max_length

        def check_string(value: Any) -> Any:
            if type(value) is str and (value in choices if choices else len(value) <= limit):
                return value
            return _check(field, value)
        return check_string
    if kind == BOOLEAN:
        def check_boolean(value: Any) -> Any:
            if value is True or value is False:
                return value
            return _check(field, value)
        return check_boolean
    return lambda value: _check(field, value)


Plan = tuple[tuple[str, bool, Callable[[Any], Any], Field], ...]


def _plan(fields: tuple[Field, ...]) -> Plan:
    return tuple((f.name, f.required, _fast_check(f), f) for f in fields)


_EVENT_PLANS: dict[str, Plan] = {kind: _plan(COMMON_FIELDS[1:] + fields)
                                 for kind, fields in EVENT_FIELDS.items()}
_PLANS: dict[int, Plan] = {id(BATCH_FIELDS): _plan(BATCH_FIELDS)}


def _missing(field: Field, data: dict[str, Any]) -> Invalid:
    if field.name in data:
        article = "an" if field.kind[0] in "aeiou" else "a"
        return Invalid(f"{field.name} must be {article} {field.kind}, not null")
    return Invalid(f"{field.name} is required")


def _apply(plan: Plan, data: dict[str, Any], out: dict[str, Any]) -> None:
    get = data.get
    for name, required, check, field in plan:
        value = get(name)
        if value is None:
            if required:
                raise _missing(field, data)
            continue  # an optional null is the same as an absent key
        out[name] = check(value)


def clean_fields(fields: tuple[Field, ...], data: dict[str, Any], out: dict[str, Any]) -> None:
    """Check ``fields`` of ``data`` into ``out``; raises Invalid naming the first problem."""
    plan = _PLANS.get(id(fields))
    if plan is None:
        plan = _PLANS[id(fields)] = _plan(fields)
    _apply(plan, data, out)


def clean_event(event: Any) -> dict[str, Any]:
    """A validated copy of one event holding only known fields; raises Invalid."""
    if type(event) is not dict:
        raise Invalid(f"event must be an object, not {_json_type(event)}")
    kind = event.get("type")
    plan = _EVENT_PLANS.get(kind) if type(kind) is str else None
    if plan is None:
        if kind is None:
            raise Invalid("type is required")
        raise Invalid(f"type must be one of {', '.join(EVENT_TYPES)}")
    out: dict[str, Any] = {"type": kind}
    _apply(plan, event, out)
    if kind == "vital":
        _check_vital(out)
    elif kind == "api":
        out["method"] = _method(out.get("method", "GET"))
    elif kind == "journey":
        _check_journey(out)
    return out


# -- the fast path: an event that passes every check unchanged is used as it is -------------
# One tuple per field, (name, required, check code, a, b), so accept_event tests a whole event
# in one loop without a call per field. Anything unusual (a null, a float for an integer, a
# string to truncate, an object, any failure) goes to clean_event, which gives the exact
# message of the first problem and the cleaned copy.
_NUM, _INT, _STR, _CHOICE, _BOOL, _SLOW = range(6)
FastSpec = tuple[tuple[str, bool, int, Any, Any], ...]


def _fast_field(field: Field) -> tuple[str, bool, int, Any, Any]:
    low = -math.inf if field.minimum is None else field.minimum
    high = math.inf if field.maximum is None else field.maximum
    if field.kind == NUMBER and high < math.inf:  # an unbounded number must still be finite
        return field.name, field.required, _NUM, low, high
    if field.kind == INTEGER:
        return field.name, field.required, _INT, low, high
    if field.kind == STRING and field.choices:
        return field.name, field.required, _CHOICE, frozenset(field.choices), None
    if field.kind == STRING:
        return field.name, field.required, _STR, None, field.max_length
    if field.kind == BOOLEAN:
        return field.name, field.required, _BOOL, None, None
    return field.name, field.required, _SLOW, None, None


# Journey events always take the exact path: they are rare and their handler checks more.
_FAST_SPECS: dict[str, FastSpec] = {
    kind: tuple(_fast_field(f) for f in COMMON_FIELDS[1:] + fields)
    for kind, fields in EVENT_FIELDS.items() if kind != "journey"}


def _passes(spec: FastSpec, event: dict[str, Any]) -> bool:
    get = event.get
    for name, required, code, a, b in spec:
        value = get(name)
        if value is None:
            if required or name in event:
                return False  # missing, or an explicit null: clean_event says which
            continue
        if code == _NUM:
            # NaN fails both comparisons; infinities fail the (finite) bounds.
            if not ((type(value) is float or type(value) is int) and a <= value <= b):
                return False
        elif code == _STR:
            if not (type(value) is str and len(value) <= b):
                return False
        elif code == _INT:
            if not (type(value) is int and a <= value <= b):
                return False
        elif code == _CHOICE:
            if not (type(value) is str and value in a):
                return False
        elif code == _BOOL:
            if not (value is True or value is False):
                return False
        else:
            return False
    return True


def accept_event(event: Any) -> dict[str, Any]:
    """The validated event: ``event`` itself when every field passes as it is, else the
    cleaned copy of :func:`clean_event`. Raises Invalid with clean_event's message.

    The request path calls this for every event; unknown keys stay in the dict but no
    expander reads them, so they are never stored.
    """
    if type(event) is dict:
        kind = event.get("type")
        spec = _FAST_SPECS.get(kind) if type(kind) is str else None
        if spec is not None and _passes(spec, event):
            if kind == "vital":
                _check_vital(event)
                return event
            if kind != "api":
                return event
            method = event.get("method")
            if method is None:
                event["method"] = "GET"
                return event
            if method.isalpha() and method.isupper():
                return event
    return clean_event(event)


def _check_vital(out: dict[str, Any]) -> None:
    limit, exclusive = _VITAL_LIMITS[out["name"]]
    value = out["value"]
    if value > limit or (exclusive and value >= limit):
        bound = f"< {limit:g}" if exclusive else f"<= {limit:g}"
        raise Invalid(f"value of {out['name']} must be {bound}")


def _method(method: str) -> str:
    method = method.upper()
    if not method.isalpha():
        raise Invalid("method must be an HTTP method name")
    return method


def _check_journey(out: dict[str, Any]) -> None:
    action = out["action"]
    if action == "start" and "journey_type" not in out:
        raise Invalid("journey_type is required to start a journey")
    if action == "step" and "step" not in out:
        raise Invalid("step is required for a journey step")


def openapi_field(field: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": field.kind}
    if field.kind in (NUMBER, INTEGER):
        if field.minimum is not None:
            schema["minimum"] = field.minimum
        if field.maximum is not None:
            schema["maximum"] = field.maximum
    elif field.kind == STRING:
        if field.choices:
            schema["enum"] = list(field.choices)
        elif not field.truncate:
            schema["maxLength"] = field.max_length
    elif field.kind == OBJECT:
        schema["additionalProperties"] = True
    if field.truncate:
        field_doc = f"{field.doc} Cut to {field.max_length} characters.".strip()
    else:
        field_doc = field.doc
    if field_doc:
        schema["description"] = field_doc
    return schema


def openapi_object(fields: tuple[Field, ...], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: openapi_field(f) for f in fields},
        "required": [f.name for f in fields if f.required],
    }
    if description:
        schema["description"] = description
    return schema
