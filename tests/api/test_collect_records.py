"""What accepted beacons become: raw rows and rollup series, written by the flusher."""

from __future__ import annotations

import time

import pytest

from perfmonitor.analytics.vitals import rate
from perfmonitor.capture.buffer import buffer
from perfmonitor.models import MetricRollup, PerformanceMetric, UserJourney, WebVital
from tests.api.beacons import COLLECT_URL, batch, post, vital

pytestmark = pytest.mark.django_db

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Mobile/15E148 Safari/604.1")


def series(kind: str) -> list[tuple]:
    return sorted(MetricRollup.objects.filter(kind=kind).values_list(
        "name", "dimension", "count", "sum", "errors"))


def test_vitals_become_rated_rows_and_rollups_per_page(client, flush):
    before = time.time()
    response = post(client, batch(
        vital("LCP", 2600, id="lcp", rating="good", ts=1_000.0),
        vital("CLS", 0.02, id="cls"), vital("INP", 640, id="inp"),
        vital("FCP", 900, id="fcp"), vital("TTFB", 120, id="ttfb"), vital("FID", 12, id="fid"),
    ))
    assert response.json()["accepted"] == 6
    assert len(buffer) == 6  # nothing was written during the request
    flush()
    rows = {v.metric_name: v for v in WebVital.objects.all()}
    assert {n: (r.value, r.rating) for n, r in rows.items()} == {
        "LCP": (2600, "needs-improvement"), "CLS": (0.02, "good"), "INP": (640, "poor"),
        "FCP": (900, "good"), "TTFB": (120, "good"), "FID": (12, "good")}
    lcp = rows["LCP"]
    assert lcp.url == "https://lms.example.com/courses/12/"  # no query string, no fragment
    assert lcp.session_id == "sess-1"
    assert lcp.metadata == {"device": "desktop", "sample_rate": 1.0, "client_ts": 1000.0,
                            "id": "lcp"}
    assert lcp.timestamp.timestamp() >= before  # the server's receipt time, not the client's
    assert series("vital") == sorted(
        (name, "/courses/12/", 1, value, 0) for name, value in
        [("LCP", 2600), ("CLS", 0.02), ("INP", 640), ("FCP", 900), ("TTFB", 120), ("FID", 12)])


def test_allow_listed_query_parameters_are_kept(client, flush, settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "URL_QUERY_ALLOWLIST": ["utm_source"]}
    post(client, batch(vital()))
    flush()
    assert WebVital.objects.get().url == "https://lms.example.com/courses/12/?utm_source=mail"


def test_a_vital_reported_again_keeps_only_its_last_value(client, flush):
    post(client, batch(vital("CLS", 0.05, id="page-1-cls")))
    post(client, batch(vital("CLS", 0.31, id="page-1-cls"), vital("CLS", 0.0, id="page-2-cls")))
    flush()
    assert sorted(WebVital.objects.values_list("metadata__id", "value", "rating")) == [
        ("page-1-cls", 0.31, "poor"), ("page-2-cls", 0.0, "good")]
    assert series("vital") == [("CLS", "/courses/12/", 2, 0.31, 0)]


def test_the_same_metric_id_in_two_sessions_is_two_values(client, flush):
    post(client, batch(vital(id="v1-lcp"), session_id="a"))
    post(client, batch(vital(id="v1-lcp"), session_id="b"))
    flush()
    assert WebVital.objects.count() == 2


@pytest.mark.parametrize(("user_agent", "sent", "device"), [
    (IPHONE, None, "mobile"), (IPAD, None, "tablet"), ("Mozilla/5.0 (Windows NT 10.0)", None,
                                                       "desktop"),
    (IPHONE, "desktop", "desktop"),
])
def test_the_device_class_is_kept_with_each_row(client, flush, user_agent, sent, device):
    extra = {"device": sent} if sent else {}
    post(client, batch(vital(), **extra), HTTP_USER_AGENT=user_agent)
    flush()
    assert WebVital.objects.get().metadata["device"] == device


def test_api_calls_feed_the_endpoint_series_and_keep_failed_details(client, flush, settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "SAMPLE_RATE": 0.0}
    post(client, batch(
        {"type": "api", "url": "https://lms.example.com/api/courses/12/lessons?page=2",
         "method": "get", "status": 200, "duration": 80, "size": 2048, "cache": False},
        {"type": "api", "url": "https://lms.example.com/api/courses/7/lessons",
         "status": 503, "duration": 40},
        {"type": "api", "url": "https://lms.example.com/api/bookings/"
         "0b7d6c2e-7a4e-4c0b-9d55-2f0d7f0c9e11", "method": "POST", "status": 0,
         "duration": 3000, "failed": True},
        {"type": "api", "url": "https://cdn.other.example/v1/config.json", "status": 200,
         "duration": 12},
    ))
    flush()
    assert series("api") == [
        ("//cdn.other.example/v1/config.json", "GET", 1, 12.0, 0),
        ("/api/bookings/:id", "POST", 1, 3000.0, 1),
        ("/api/courses/:id/lessons", "GET", 2, 120.0, 1),
    ]
    # SAMPLE_RATE 0: only the failed calls keep a detail row.
    rows = PerformanceMetric.objects.filter(metric_type="api").order_by("duration")
    assert [(r.metric_name, r.duration, r.metadata["status"], r.error_details) for r in rows] == [
        ("/api/courses/:id/lessons", 40.0, 503, {"status": 503, "failed": False}),
        ("/api/bookings/:id", 3000.0, 0, {"status": 0, "failed": True}),
    ]
    assert rows[0].url == "https://lms.example.com/api/courses/7/lessons"
    assert rows[0].metadata["page"] == "/courses/12/"


def test_renders_errors_resources_memory_and_custom_events(client, flush):
    post(client, batch(
        {"type": "render", "component": "LessonList", "duration": 64.5, "phase": "mount"},
        {"type": "error", "message": "Cannot read properties of undefined (reading 'id') #42",
         "error_type": "TypeError", "source": "https://lms.example.com/static/app.js?v=9",
         "line": 10, "column": 4, "stack": "TypeError: x\n at https://lms.example.com/"
         "static/app.js?v=9:10:4", "kind": "error"},
        {"type": "resource", "js_transfer": 300_000, "css_transfer": 40_000, "js_decoded": 900_000,
         "css_decoded": 120_000, "total_transfer": 500_000, "count": 14},
        {"type": "memory", "used": 12_000_000, "total": 20_000_000, "limit": 4_000_000_000},
        {"type": "custom", "name": "checkout.total", "value": 330.5, "unit": "ms",
         "metadata": {"items": 3}},
    ), HTTP_USER_AGENT=IPHONE)
    flush()
    assert series("render") == [("LessonList", "/courses/12/", 1, 64.5, 0)]
    fingerprint = "TypeError: Cannot read properties of undefined (reading 'id') #N"
    assert series("error") == [(fingerprint, "/courses/12/", 1, 1.0, 1)]
    sizes = {"js_transfer": 300_000, "css_transfer": 40_000, "js_decoded": 900_000,
             "css_decoded": 120_000, "total_transfer": 500_000}
    assert series("resource") == sorted(("/courses/12/", d, 1, v, 0) for d, v in sizes.items())
    assert series("memory") == [("/courses/12/", "", 1, 12_000_000, 0)]
    assert series("custom") == [("checkout.total", "", 1, 330.5, 0)]
    rows = {r.metric_type: r for r in PerformanceMetric.objects.all()}
    assert rows["render"].metadata["slow"] is True and rows["render"].metadata["phase"] == "mount"
    error = rows["error"]
    assert error.metric_name == fingerprint
    assert error.error_details["source"] == "https://lms.example.com/static/app.js"
    assert "?v=9" not in error.error_details["stack"]
    assert error.metadata["device"] == "mobile"
    assert rows["resource"].duration == 340_000  # bundle bytes: JS + CSS transfer
    assert rows["resource"].metadata["count"] == 14
    assert rows["memory"].duration == 12_000_000
    assert rows["custom"].metadata["metadata"] == {"items": 3}


def test_the_collect_request_itself_is_not_recorded_and_does_no_queries(
        client, flush, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert post(client, batch(vital())).status_code == 202
    flush()
    assert not PerformanceMetric.objects.filter(metric_type="request").exists()


def test_a_logged_in_visitors_beacons_carry_the_user_id(client, flush, django_user_model):
    user = django_user_model.objects.create_user("ada", password="pw")
    client.force_login(user)
    post(client, batch(vital()))
    flush()
    assert WebVital.objects.get().user_id == str(user.pk)


def test_server_ratings_follow_the_thresholds_at_the_edges():
    assert [rate("LCP", v) for v in (2500, 2500.1, 4000, 4000.1)] == [
        "good", "needs-improvement", "needs-improvement", "poor"]
    assert [rate("CLS", v) for v in (0.1, 0.25, 0.26)] == ["good", "needs-improvement", "poor"]


class TestJourneyEvents:
    def test_without_the_journeys_module_they_are_rejected(self, client, monkeypatch):
        monkeypatch.setattr("perfmonitor.api.collect._journey_handler", lambda: None)
        response = post(client, batch({"type": "journey", "action": "start",
                                       "journey_id": "j1", "journey_type": "login"}))
        assert response.json()["errors"] == [{"index": 0, "reason": "journeys not available"}]

    def test_valid_ones_are_handed_to_the_journeys_module(self, client, monkeypatch):
        calls = []

        def handle(event, session_id, user_id):
            calls.append((event["action"], event["journey_id"], session_id, user_id))
            return "unknown journey" if event["journey_id"] == "missing" else None

        monkeypatch.setattr("perfmonitor.api.collect._journey_handler", lambda: handle)
        response = post(client, batch(
            {"type": "journey", "action": "start", "journey_id": "j1", "journey_type": "login",
             "metadata": {"form": "modal"}},
            {"type": "journey", "action": "step", "journey_id": "missing", "step": "submit"},
        ))
        assert response.json() == {"accepted": 1, "rejected": 1, "errors": [
            {"index": 1, "reason": "unknown journey"}]}
        assert calls == [("start", "j1", "sess-1", ""), ("step", "missing", "sess-1", "")]

    def test_a_failing_journeys_module_rejects_the_item_not_the_request(self, client,
                                                                         monkeypatch):
        def broken(event, session_id, user_id):
            raise RuntimeError("db down")

        monkeypatch.setattr("perfmonitor.api.collect._journey_handler", lambda: broken)
        response = post(client, batch({"type": "journey", "action": "complete",
                                       "journey_id": "j1"}, vital()))
        assert response.status_code == 202
        assert response.json()["errors"] == [{"index": 0,
                                              "reason": "journey could not be recorded"}]
        assert response.json()["accepted"] == 1


def test_the_openapi_schema_documents_the_collect_endpoint(client):
    response = client.get("/perfmonitor/api/v1/schema", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"][COLLECT_URL]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json", "text/plain"}
    assert set(operation["responses"]) == {"202", "400", "403", "413", "415", "429"}
    components = schema["components"]["schemas"]
    events = components["BeaconBatch"]["properties"]["events"]
    assert events["maxItems"] == 100
    assert set(events["items"]["discriminator"]["mapping"]) == {
        "vital", "api", "render", "error", "resource", "memory", "custom", "journey"}
    assert components["VitalEvent"]["required"] == ["type", "name", "value", "id"]
    assert components["JourneyEvent"]["properties"]["journey_id"]["maxLength"] == 64


def test_journey_events_reach_the_journeys_module(client):
    post(client, batch(
        {"type": "journey", "action": "start", "journey_id": "j-login-1", "journey_type": "login",
         "ts": 1_000},
        {"type": "journey", "action": "complete", "journey_id": "j-login-1", "ts": 4_000},
    ))
    journey = UserJourney.objects.get(journey_id="j-login-1")
    assert (journey.journey_type, journey.session_id, journey.status) == (
        "login", "sess-1", "completed")
