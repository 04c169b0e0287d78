"""Property: whatever JSON (or bytes) a client posts, collect answers without a 5xx.

Three generators, from blind to informed: arbitrary bytes, arbitrary JSON
documents, and batches whose events mix real field names with arbitrary values
(so validation is exercised deep inside each event type). Everything accepted
is then flushed: expanding the records must not fail either.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfmonitor.beacons.schema import BATCH_FIELDS, COMMON_FIELDS, EVENT_FIELDS, EVENT_TYPES
from perfmonitor.capture import buffer as buffer_module
from tests.api.beacons import CHROME_UA, COLLECT_URL

pytestmark = pytest.mark.django_db

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10 ** 30), max_value=10 ** 30)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
           | st.sampled_from(["LCP", "CLS", "INP", "vital", "api", "start", "step", "", "GET"]))
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=5)
                           | st.dictionaries(st.text(max_size=10), children, max_size=5),
                           max_leaves=30)
field_names = sorted({f.name for fields in EVENT_FIELDS.values() for f in fields}
                     | {f.name for f in COMMON_FIELDS} - {"type"})
events = st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES) | scalars},
    optional={name: json_values for name in field_names},
)
batches = st.fixed_dictionaries(
    {"events": st.lists(events | json_values, max_size=8)},
    optional={f.name: scalars for f in BATCH_FIELDS},
)
media_types = st.sampled_from(["application/json", "text/plain;charset=UTF-8", "text/plain"])
SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def _post(client, body: bytes, media_type: str):
    response = client.generic("POST", COLLECT_URL, body, content_type=media_type,
                              HTTP_USER_AGENT=CHROME_UA)
    assert response.status_code < 500, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


def _flush_cleanly() -> None:
    buffer_module.flush_now()
    assert buffer_module.buffer.internal_errors == 0


@SETTINGS
@given(body=st.binary(max_size=300), media_type=media_types)
def test_arbitrary_bytes_never_get_a_5xx(client, body, media_type):
    _post(client, body, media_type)


@SETTINGS
@given(document=json_values, media_type=media_types)
def test_arbitrary_json_never_gets_a_5xx(client, document, media_type):
    _post(client, json.dumps(document).encode(), media_type)


@SETTINGS
@given(document=batches, media_type=media_types)
def test_batches_of_arbitrary_events_never_get_a_5xx_nor_break_the_flusher(
        client, document, media_type):
    answer = _post(client, json.dumps(document).encode(), media_type)
    if "accepted" in answer:
        assert answer["accepted"] + answer["rejected"] == len(document["events"])
    _flush_cleanly()
