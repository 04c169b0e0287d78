"""A page drives a journey through the collect API; the server keeps the page's timings."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from perfmonitor.journeys import handle_browser_event
from perfmonitor.models import UserJourney

pytestmark = pytest.mark.django_db

COLLECT_URL = "/perfmonitor/api/v1/collect"


def event(action: str, journey_id: str = "j-login-1", **fields: Any) -> dict[str, Any]:
    return {"type": "journey", "action": action, "journey_id": journey_id, **fields}


def test_a_browser_login_journey_keeps_the_pages_step_durations():
    t = time.time() * 1000 - 10_000  # the page started ten seconds ago; one beacon now
    events = [
        event("start", journey_type="login", ts=t, metadata={"device": "desktop"}),
        event("step", step="form_view", ts=t + 100),
        event("step", step="credentials_submitted", ts=t + 2100),
        event("step", step="authenticated", ts=t + 2600),
        event("step", step="dashboard_loaded", ts=t + 2900),
        event("complete", ts=t + 3000),
    ]
    assert [handle_browser_event(e, "sess-1", "42") for e in events] == [None] * 6

    row = UserJourney.objects.get(journey_id="j-login-1")
    assert (row.status, row.duration, row.user_id, row.session_id) == (
        "completed", 3000, "42", "sess-1")
    assert row.metadata == {"device": "desktop", "source": "browser", "client_start_ts": t}
    assert [(s["name"], s["duration_ms"], s["client_ts"]) for s in row.steps] == [
        ("form_view", 100.0, t + 100), ("credentials_submitted", 2000.0, t + 2100),
        ("authenticated", 500.0, t + 2600), ("dashboard_loaded", 300.0, t + 2900)]


def test_bad_browser_events_are_rejected_with_a_reason():
    t = time.time() * 1000
    assert handle_browser_event(event("start", journey_type="login", ts=t), "s1", "") is None
    reasons = {
        "unknown type": handle_browser_event(event("start", "j2", journey_type="checkout"),
                                             "s1", ""),
        "unknown step": handle_browser_event(event("step", step="pay", ts=t + 5), "s1", ""),
        "bad id": handle_browser_event(event("step", "no spaces allowed", step="form_view"),
                                       "s1", ""),
        "long id": handle_browser_event(event("step", "x" * 65, step="form_view"), "s1", ""),
        "other session": handle_browser_event(event("step", step="form_view"), "s2", ""),
        "id reused": handle_browser_event(event("start", journey_type="login"), "s2", ""),
        "no such journey": handle_browser_event(event("complete", "j-unknown"), "s1", ""),
        "bad action": handle_browser_event(event("restart"), "s1", ""),
    }
    assert reasons == {
        "unknown type": "unknown journey type 'checkout'",
        "unknown step": "'pay' is not a step of the 'login' journey",
        "bad id": "journey_id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
        "long id": "journey_id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
        "other session": "journey belongs to another session",
        "id reused": "journey id 'j-login-1' is already in use",
        "no such journey": "unknown journey 'j-unknown'",
        "bad action": "action must be one of start, step, complete, fail, abandon",
    }
    # A retried beacon repeats its start: accepted, nothing changes.
    assert handle_browser_event(event("start", journey_type="login", ts=t), "s1", "") is None
    assert UserJourney.objects.get().steps == []


def test_after_completion_a_step_is_rejected_and_completing_again_is_accepted():
    t = time.time() * 1000
    for e in (event("start", journey_type="login", ts=t), event("complete", ts=t + 10)):
        assert handle_browser_event(e, "s1", "") is None
    assert handle_browser_event(event("step", step="form_view", ts=t + 20), "s1", "") == (
        "journey j-login-1 is already completed; step 'form_view' rejected")
    assert handle_browser_event(event("complete", ts=t + 30), "s1", "") is None
    assert UserJourney.objects.get().duration == 10


def test_a_failed_and_an_abandoned_browser_journey_keep_their_reasons():
    t = time.time() * 1000
    handle_browser_event(event("start", "pay-1", journey_type="payment_processing", ts=t), "s", "")
    handle_browser_event(event("step", "pay-1", step="checkout_view", ts=t + 400), "s", "")
    assert handle_browser_event(event("fail", "pay-1", step="payment_authorized",
                                      reason="card_declined", ts=t + 900), "s", "") is None
    handle_browser_event(event("start", "pay-2", journey_type="payment_processing", ts=t), "s", "")
    assert handle_browser_event(event("abandon", "pay-2", reason="page_hidden", ts=t + 50),
                                "s", "") is None
    failed, gave_up = (UserJourney.objects.get(journey_id=i) for i in ("pay-1", "pay-2"))
    assert (failed.status, failed.abandonment_reason, failed.metadata["failed_step"],
            failed.duration) == ("failed", "card_declined", "payment_authorized", 900)
    assert (gave_up.status, gave_up.abandonment_reason) == ("abandoned", "page_hidden")


def test_a_client_clock_far_in_the_future_falls_back_to_the_receipt_time():
    t = time.time() * 1000
    handle_browser_event(event("start", journey_type="login", ts=t), "s1", "")
    handle_browser_event(event("step", step="form_view", ts=t + 3_600_000), "s1", "")
    step = UserJourney.objects.get().steps[0]
    assert 0 <= step["duration_ms"] < 60_000


def test_journey_events_through_the_collect_endpoint(client):
    t = time.time() * 1000 - 5000
    body = {"session_id": "tab-7", "page": "https://lms.example.com/login/", "events": [
        event("start", "j-c1", journey_type="login", ts=t),
        event("step", "j-c1", step="form_view", ts=t + 250),
        event("step", "j-c1", step="teleported", ts=t + 300),
        event("complete", "j-c1", ts=t + 1250),
    ]}
    response = client.post(COLLECT_URL, json.dumps(body), content_type="text/plain")
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "rejected": 1, "errors": [
        {"index": 2, "reason": "'teleported' is not a step of the 'login' journey"}]}
    row = UserJourney.objects.get(journey_id="j-c1")
    assert (row.status, row.session_id, row.duration) == ("completed", "tab-7", 1250)
    assert [(s["name"], s["duration_ms"]) for s in row.steps] == [("form_view", 250.0)]
