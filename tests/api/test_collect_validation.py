"""Every validation rule of the collect endpoint: a clear 4xx or a per-item reason, never a 500."""

from __future__ import annotations

import io
import json

import pytest
from django.core.cache import cache
from django.test import Client

from perfmonitor.api.collect import BatchProblem, BeaconJSONParser
from perfmonitor.capture.buffer import buffer
from perfmonitor.models import WebVital
from tests.api.beacons import COLLECT_URL, batch, post, vital

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()  # throttle counters live in the default cache
    yield
    cache.clear()


def reasons(response) -> list[str]:
    return [e["reason"] for e in response.json()["errors"]]


# -- per-event rules --------------------------------------------------------------------------

@pytest.mark.parametrize(("event", "reason"), [
    (vital(value="1200"), "value must be a number, not a string"),
    (vital(value=True), "value must be a number, not a boolean"),
    (vital(value=None), "value must be a number, not null"),
    (vital(value=[1]), "value must be a number, not an array"),
    (vital(value=-1), "value must be >= 0"),
    (vital(name="LCP", value=600_000), "value of LCP must be < 600000"),
    (vital(name="FCP", value=10 ** 7), "value must be <= 600000"),
    (vital(name="TTFB", value=600_000), "value of TTFB must be < 600000"),
    (vital(name="INP", value=60_001), "value of INP must be <= 60000"),
    (vital(name="CLS", value=10.5), "value of CLS must be <= 10"),
    (vital(name="XYZ"), "name must be one of LCP, INP, CLS, FCP, TTFB, FID"),
    (vital(name=5), "name must be a string, not a number"),
    ({"type": "vital", "name": "LCP", "value": 1}, "id is required"),
    (vital(id="x" * 200), "id is longer than 128 characters"),
    ({"type": "telemetry"}, "type must be one of vital, api, render, error, resource, memory, "
                            "custom, journey"),
    ({"name": "LCP"}, "type is required"),
    ("LCP=1200", "event must be an object, not a string"),
    ({"type": "api", "url": "/api/x", "status": "200", "duration": 5},
     "status must be a number, not a string"),
    ({"type": "api", "url": "/api/x", "status": 200.5, "duration": 5},
     "status must be an integer"),
    ({"type": "api", "url": "/api/x", "status": 700, "duration": 5}, "status must be <= 599"),
    ({"type": "api", "url": "/api/x", "status": 200, "duration": 5, "method": "G E T"},
     "method must be an HTTP method name"),
    ({"type": "api", "url": "/api/x", "status": 200, "duration": 1e9},
     "duration must be <= 600000"),
    ({"type": "render", "component": "List", "duration": -3}, "duration must be >= 0"),
    ({"type": "resource", "js_transfer": 1, "css_transfer": 1, "js_decoded": 1,
      "css_decoded": 1}, "total_transfer is required"),
    ({"type": "memory", "used": 1e13}, "used must be <= 1e+12"),
    ({"type": "custom", "name": "x", "value": 1, "metadata": {"blob": "x" * 3000}},
     "metadata is larger than 2048 bytes"),
    ({"type": "custom", "name": "x", "value": 1, "metadata": [1]},
     "metadata must be an object, not an array"),
    ({"type": "api", "url": "/api/x", "status": 200, "duration": 5, "cache": "yes"},
     "cache must be true or false, not a string"),
])
def test_an_invalid_event_is_rejected_with_its_reason_and_nothing_is_stored(client, event,
                                                                           reason):
    response = post(client, batch(event))
    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "rejected": 1,
                               "errors": [{"index": 0, "reason": reason}]}
    assert len(buffer) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_rejected_per_event(client, literal):
    body = json.dumps(batch(vital(value=0.5), vital(id="v2"))).replace("0.5", literal)
    response = post(client, body)
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert reasons(response) == ["value must be a finite number"]


def test_a_mixed_batch_keeps_its_valid_events(client, flush):
    response = post(client, batch(
        vital("LCP", 1800, id="lcp-1"),
        vital("CLS", "0.1", id="cls-1"),
        vital("INP", 250, id="inp-1"),
        {"type": "api", "url": "https://lms.example.com/api/x", "status": 200, "duration": -1},
    ))
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "rejected": 2, "errors": [
        {"index": 1, "reason": "value must be a number, not a string"},
        {"index": 3, "reason": "duration must be >= 0"}]}
    flush()
    assert sorted(WebVital.objects.values_list("metric_name", "value")) == [
        ("INP", 250.0), ("LCP", 1800.0)]


def test_unknown_fields_are_ignored_and_not_stored(client, flush):
    response = post(client, batch(vital(rating="good", password="hunter2")))
    assert response.json()["accepted"] == 1
    flush()
    row = WebVital.objects.get()
    assert "password" not in json.dumps(row.metadata)


@pytest.mark.parametrize(("event", "reason"), [
    ({"type": "journey", "action": "start", "journey_id": "j1"},
     "journey_type is required to start a journey"),
    ({"type": "journey", "action": "step", "journey_id": "j1"},
     "step is required for a journey step"),
    ({"type": "journey", "action": "teleport", "journey_id": "j1"},
     "action must be one of start, step, complete, fail, abandon"),
    ({"type": "journey", "action": "complete"}, "journey_id is required"),
])
def test_journey_events_are_checked_for_shape(client, event, reason):
    assert reasons(post(client, batch(event))) == [reason]


# -- whole-batch rules ------------------------------------------------------------------------

def assert_problem(response, status: int, code: str, words: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == code
    assert words in body["detail"]


def test_an_oversize_body_gets_413(client):
    events = [vital(id=f"v{i}", target="x" * 250) for i in range(90)]
    body = json.dumps(batch(*events))
    assert len(body) > 16 * 1024
    big = json.dumps(batch(*events, page="https://lms.example.com/" + "p" * 50_000))
    assert len(big) > 64 * 1024
    assert_problem(post(client, big), 413, "payload_too_large", "the limit is 65536")
    assert len(buffer) == 0


def test_the_byte_limit_holds_even_when_content_length_is_missing():
    parser = BeaconJSONParser()
    with pytest.raises(BatchProblem) as raised:
        parser.parse(io.BytesIO(b"[" * (64 * 1024 + 10)))
    assert raised.value.status_code == 413


def test_too_many_events_gets_413(client):
    events = [vital(id=f"v{i}") for i in range(101)]
    assert_problem(post(client, batch(*events)), 413, "too_many_events",
                   "101 events in one batch; the limit is 100")


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "application/xml", "multipart/form-data; boundary=x"])
def test_a_wrong_content_type_gets_415(client, content_type):
    response = client.post(COLLECT_URL, json.dumps(batch(vital())), content_type=content_type)
    assert_problem(response, 415, "unsupported_media_type",
                   "Content-Type must be application/json or text/plain")


def test_json_content_type_is_accepted_as_well_as_text_plain(client):
    assert post(client, batch(vital()), content_type="application/json").status_code == 202


@pytest.mark.parametrize(("body", "status", "code", "words"), [
    ("", 400, "empty_body", "body is empty"),
    ("{not json", 400, "invalid_json", "body is not valid JSON"),
    (b"\xff\xfe{}", 400, "invalid_json", "body is not UTF-8"),
    ("[" * 5000 + "]" * 5000, 400, "invalid_json", "too deeply nested"),
    ("[]", 400, "invalid_batch", "body must be a JSON object"),
    ('{"session_id": "s"}', 400, "invalid_batch", "events is required"),
    ('{"session_id": "s", "events": {}}', 400, "invalid_batch", "events must be an array"),
    ('{"session_id": "s", "events": []}', 400, "invalid_batch", "events is empty"),
    ('{"events": [{}]}', 400, "invalid_batch", "session_id is required"),
    ('{"events": [{}], "session_id": 7}', 400, "invalid_batch",
     "session_id must be a string, not a number"),
    ('{"events": [{}], "session_id": "s", "sample_rate": 2}', 400, "invalid_batch",
     "sample_rate must be <= 1"),
    ('{"events": [{}], "session_id": "s", "device": "fridge"}', 400, "invalid_batch",
     "device must be one of mobile, tablet, desktop"),
])
def test_a_malformed_batch_gets_400_naming_the_problem(client, body, status, code, words):
    # (The test client drops Content-Type from an empty body; browsers keep it.)
    assert_problem(post(client, body, CONTENT_TYPE="text/plain"), status, code, words)


def test_foreign_origin_is_refused_when_the_allow_list_is_set(client, settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR,
                            "ALLOWED_ORIGINS": ["https://lms.example.com"]}
    assert_problem(post(client, batch(vital()), HTTP_ORIGIN="https://evil.example"), 403,
                   "origin_not_allowed", "origin https://evil.example is not in")
    assert_problem(post(client, batch(vital()), HTTP_REFERER="https://evil.example/page"), 403,
                   "origin_not_allowed", "https://evil.example")
    allowed = post(client, batch(vital()), HTTP_ORIGIN="https://lms.example.com")
    assert allowed.status_code == 202
    assert allowed["Access-Control-Allow-Origin"] == "https://lms.example.com"
    # The site's own pages and non-browser senders need no entry.
    assert post(client, batch(vital()), HTTP_ORIGIN="http://testserver").status_code == 202
    assert post(client, batch(vital())).status_code == 202


def test_any_origin_may_post_when_the_allow_list_is_empty(client):
    response = post(client, batch(vital()), HTTP_ORIGIN="https://other.example")
    assert response.status_code == 202


def test_a_throttled_client_gets_429_and_other_clients_do_not(client, settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "COLLECT_THROTTLE_RATE": "3/min"}
    for _ in range(3):
        assert post(client, batch(vital()), REMOTE_ADDR="203.0.113.7").status_code == 202
    response = post(client, batch(vital()), REMOTE_ADDR="203.0.113.7")
    assert_problem(response, 429, "throttled", "too many beacons from this client")
    assert 1 <= response.json()["retry_after"] <= 61
    assert "Retry-After" in response
    assert post(client, batch(vital()), REMOTE_ADDR="198.51.100.2").status_code == 202
    # The throttle keys on a keyed hash: the address itself is not kept.
    assert not any("203.0.113.7" in key for key in cache._cache)


def test_the_write_key_is_required_when_configured(client, settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "WRITE_KEY": "pk_live_123"}
    assert_problem(post(client, batch(vital())), 403, "write_key_required", "write_key")
    assert_problem(post(client, batch(vital(), write_key="nope")), 403, "write_key_invalid",
                   "write_key is not valid")
    assert post(client, batch(vital(), write_key="pk_live_123")).status_code == 202
    assert post(client, batch(vital()), HTTP_X_PERFMONITOR_KEY="pk_live_123").status_code == 202


@pytest.mark.parametrize("user_agent", [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
])
def test_bots_get_a_clear_answer_and_nothing_is_stored(client, user_agent):
    response = post(client, batch(vital()), HTTP_USER_AGENT=user_agent)
    assert response.status_code == 202
    assert response.json()["ignored"] == "bot user agent: nothing was stored"
    assert len(buffer) == 0


def test_collect_is_csrf_exempt():
    response = post(Client(enforce_csrf_checks=True), batch(vital()))
    assert response.status_code == 202


def test_a_cors_preflight_is_answered(client):
    response = client.options(COLLECT_URL, HTTP_ORIGIN="https://lms.example.com",
                              HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert response.status_code == 204
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert response["Access-Control-Allow-Origin"] == "https://lms.example.com"


def test_other_methods_get_405_not_500(client):
    assert client.get(COLLECT_URL).status_code == 405


def test_the_throttle_counts_across_web_processes(client, settings, monkeypatch):
    # Each web process keeps its own unsent steps; the count they share is the cache's.
    # Two processes are played here by swapping the per-process table.
    from perfmonitor.api import collect

    settings.PERFMONITOR = {**settings.PERFMONITOR, "COLLECT_THROTTLE_RATE": "100/min"}
    process_a, process_b = {}, {}

    def sent_until_refused(table, most):
        monkeypatch.setattr(collect, "_local_counts", table)
        for sent in range(most):
            if post(client, batch(vital()), REMOTE_ADDR="203.0.113.9").status_code == 429:
                return sent
        return most

    assert sent_until_refused(process_a, 60) == 60
    assert sent_until_refused(process_b, 100) == 40  # 60 + 40: the limit, shared
    # The first process learns it at its next step (a tenth of the limit): less than a
    # step more gets through there.
    assert sent_until_refused(process_a, 20) == 9
