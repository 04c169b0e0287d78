"""Journey events through the collect API: how the browser client ends a journey."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from perfmonitor.models import UserJourney
from tests.api.beacons import batch, post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def journey(action: str, journey_id: str, **fields):
    return {"type": "journey", "action": action, "journey_id": journey_id,
            "ts": time.time() * 1000, **fields}


def test_complete_with_metadata_adds_it_to_the_journey(client):
    response = post(client, batch(
        journey("start", "pay-1", journey_type="payment_processing", metadata={"plan": "pro"}),
        journey("complete", "pay-1", metadata={"amount_band": "high", "plan": "free"}),
    ))
    assert response.json() == {"accepted": 2, "rejected": 0, "errors": []}
    row = UserJourney.objects.get(journey_id="pay-1")
    assert row.status == "completed"
    # The end's keys are added; what the journey already had is kept.
    assert row.metadata["amount_band"] == "high"
    assert row.metadata["plan"] == "pro" and row.metadata["source"] == "browser"


def test_fail_names_the_step_like_the_python_api(client):
    response = post(client, batch(
        journey("start", "pay-2", journey_type="payment_processing"),
        journey("fail", "pay-2", step="payment_authorized", reason="card_declined",
                metadata={"gateway": "test"}),
    ))
    assert response.json()["accepted"] == 2
    row = UserJourney.objects.get(journey_id="pay-2")
    assert (row.status, row.abandonment_reason) == ("failed", "card_declined")
    assert row.metadata["failed_step"] == "payment_authorized"
    assert row.metadata["gateway"] == "test"


def test_fail_without_a_step_still_works_and_an_unknown_step_is_refused(client):
    response = post(client, batch(
        journey("start", "pay-3", journey_type="payment_processing"),
        journey("fail", "pay-3", step="no_such_step", reason="x"),
        journey("fail", "pay-3", reason="gave up on the form"),
    ))
    assert response.json()["errors"] == [
        {"index": 1, "reason": "'no_such_step' is not a step of the 'payment_processing' "
                               "journey"}]
    row = UserJourney.objects.get(journey_id="pay-3")
    assert (row.status, row.abandonment_reason) == ("failed", "gave up on the form")
    assert row.metadata["failed_step"] == "checkout_view"  # no step was reached: the first
