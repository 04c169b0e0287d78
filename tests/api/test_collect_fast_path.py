"""The request path's shortcuts give exactly the answers of the plain rules.

``accept_event`` uses an event as it is when every field passes; ``parse_body``
parses with orjson and falls back to the standard library for what orjson
refuses. Both must agree with the plain path on every input: the same cleaned
event or the same per-event message, the same document or the same 400.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmonitor.api.collect import BatchProblem, parse_body
from perfmonitor.beacons.schema import (
    COMMON_FIELDS,
    EVENT_FIELDS,
    EVENT_TYPES,
    Invalid,
    accept_event,
    clean_event,
)

# Values near every bound and of every JSON type, so both paths meet each rule.
edge_numbers = st.sampled_from([0, -1, 0.0, -0.0, 1, 200, 200.0, 200.5, 599, 600, 1e9, 1e12,
                                1e14, 1e15, 599_999.9, 600_000, 60_000, 60_001, 10, 10.5,
                                2 ** 64, float("nan"), float("inf"), float("-inf")])
scalars = (st.none() | st.booleans() | edge_numbers
           | st.integers(min_value=-(10 ** 20), max_value=10 ** 20)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=20) | st.text(min_size=120, max_size=300)
           | st.sampled_from(["LCP", "CLS", "INP", "FID", "navigate", "get", "GET", "PoSt",
                              "G E T", "mount", "error", "start", "step", ""]))
values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.text(max_size=5),
                                                                    scalars, max_size=3)
KNOWN = {kind: {f.name for f in COMMON_FIELDS + fields} for kind, fields in EVENT_FIELDS.items()}
field_names = sorted(set().union(*KNOWN.values()) - {"type"})
events = st.fixed_dictionaries({"type": st.sampled_from(EVENT_TYPES) | scalars},
                               optional={name: values for name in field_names + ["extra"]})


def outcome(check, event):
    try:
        return "ok", check(event)
    except Invalid as exc:
        return "invalid", str(exc)


@settings(max_examples=1500, deadline=None, database=None)
@given(events | values)
def test_accept_event_agrees_with_clean_event(event):
    expected = outcome(clean_event, copy.deepcopy(event))
    got = outcome(accept_event, event)
    if expected[0] == "invalid":
        assert got == expected
        return
    assert got[0] == "ok"
    # accept_event may hand back the event itself: compare the fields an expander can read.
    kept = {k: v for k, v in got[1].items() if k in KNOWN[got[1]["type"]]}
    assert json.dumps(kept, sort_keys=True) == json.dumps(expected[1], sort_keys=True)


def test_a_valid_event_is_used_as_it_is():
    event = {"type": "render", "component": "Card", "duration": 3.5, "phase": "mount"}
    assert accept_event(event) is event
    api = {"type": "api", "url": "/api/x", "status": 200, "duration": 5.0}
    assert accept_event(api)["method"] == "GET"


def _parse(raw: bytes):
    try:
        return "ok", parse_body(raw)
    except BatchProblem as exc:
        return exc.error_code, str(exc.detail)


def _plain(raw: bytes):
    try:
        return "ok", json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "invalid_json", "body is not UTF-8"
    except json.JSONDecodeError as exc:
        return "invalid_json", f"body is not valid JSON: {exc.msg} at character {exc.pos}"
    except (RecursionError, ValueError):
        return "invalid_json", "body is not valid JSON: too deeply nested or a number too large"


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4), max_leaves=20)


@settings(max_examples=500, deadline=None, database=None)
@given(json_documents.map(lambda doc: json.dumps(doc).encode())
       | st.binary(max_size=40)
       | st.sampled_from([b'{"a": 1, "a": 2}', b"[NaN, Infinity, -Infinity]", b"[1e999]",
                          b'"\\ud800"', b"\xef\xbb\xbf{}", b'"a\x01b"', b"[" * 3000]))
def test_parse_body_agrees_with_the_standard_library(raw):
    if not raw:
        assert _parse(raw)[0] == "empty_body"
        return
    expected, got = _plain(raw), _parse(raw)
    # NaN != NaN: compare the documents as the standard library writes them.
    assert (got[0], json.dumps(got[1])) == (expected[0], json.dumps(expected[1]))


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_still_reach_the_event_checks(literal):
    doc = parse_body(b'{"events": [{"type": "vital", "value": ' + literal + b"}]}")
    assert not math.isfinite(doc["events"][0]["value"])
