"""Alert rules read journey completion rate and p75 duration from the rollups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from perfmonitor import journeys
from perfmonitor.journeys.metrics import step_timings
from tests.journeys.conftest import at

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


@pytest.fixture
def last_hour(flush) -> None:
    """Six logins ended in the last hour: 4 completed (5, 6, 10, 20 s), 1 failed, 1 abandoned."""
    base = timezone.now() - timedelta(minutes=40)
    for n, duration in enumerate((5000, 6000, 10000, 20000)):
        journey_id = journeys.start("login", at=at(n * 1000, base))
        journeys.step(journey_id, "form_view", at=at(n * 1000 + 400, base))
        journeys.complete(journey_id, at=at(n * 1000 + duration, base))
    failed = journeys.start("login", at=at(0, base))
    journeys.fail(failed, "authenticated", "invalid_password", at=at(3000, base))
    gave_up = journeys.start("login", at=at(0, base))
    journeys.abandon(gave_up, "closed_tab", at=at(9000, base))
    journeys.start("login", at=at(0, base))  # still going
    flush()


def test_completion_rate_and_p75_duration_for_alert_rules(last_hour):
    metric = journeys.journey_metric
    assert metric("login", "completion_rate", HOUR) == pytest.approx(4 / 6)
    assert metric("login", "abandonment_rate", HOUR) == pytest.approx(1 / 6)
    assert metric("login", "failure_rate", HOUR) == pytest.approx(1 / 6)
    # Rollup quantiles are within the sketches' 1 % of the exact value.
    assert metric("login", "p75_duration", HOUR) == pytest.approx(10000, rel=0.01)
    assert metric("login", "median_duration", HOUR) == pytest.approx(6000, rel=0.01)
    assert (metric("login", "started", HOUR), metric("login", "ended", HOUR)) == (7.0, 6.0)
    # T = 10 s: 5, 6 and 10 s satisfied, 20 s tolerating, the failure and abandonment frustrated.
    assert metric("login", "apdex", HOUR) == pytest.approx(3.5 / 6)


def test_per_step_timings_come_from_the_rollups(last_hour):
    form = step_timings("login", HOUR)["form_view"]
    assert (form.count, form.min, form.max) == (4, 400.0, 400.0)


def test_no_data_is_none_not_zero(db):
    assert journeys.journey_metric("payment_processing", "completion_rate", HOUR) is None
    assert journeys.journey_metric("payment_processing", "p75_duration", HOUR) is None
    assert journeys.journey_metric("payment_processing", "started", HOUR) == 0.0


def test_unknown_metric_or_type_is_a_clear_error(db):
    with pytest.raises(journeys.JourneyError, match="completion_rate"):
        journeys.journey_metric("login", "conversion", HOUR)
    with pytest.raises(journeys.UnknownJourneyType):
        journeys.journey_metric("checkout", "completion_rate", HOUR)
