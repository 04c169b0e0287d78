"""Journeys nobody finishes are abandoned for ``timeout`` once the clock passes their timeout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django_celery_beat.models import PeriodicTask

from perfmonitor import journeys, tasks
from perfmonitor.capture import buffer
from perfmonitor.models import MetricRollup, UserJourney
from perfmonitor.schedule import ensure_periodic_tasks
from tests.journeys.conftest import T0, at

pytestmark = pytest.mark.django_db

MINUTE = 60_000


@pytest.fixture
def stuck() -> dict[str, str]:
    """Login times out after 10 minutes, dashboard loading after 2."""
    left = journeys.start("login", at=at(0))
    journeys.step(left, "form_view", at=at(500))
    journeys.step(left, "credentials_submitted", at=at(30_000))
    late = journeys.start("login", at=at(9 * MINUTE))
    done = journeys.start("login", at=at(0))
    journeys.complete(done, at=at(4000))
    dashboard = journeys.start("dashboard_loading", at=at(0))
    UserJourney.objects.create(journey_id="legacy-1", journey_type="legacy_flow",
                               start_time=T0 - timedelta(hours=2))
    return {"left": left, "late": late, "done": done, "dashboard": dashboard}


def status(journey_id: str) -> str:
    return UserJourney.objects.get(journey_id=journey_id).status


def test_each_type_times_out_after_its_own_timeout(stuck):
    assert journeys.cleanup_stuck_journeys(now=at(5 * MINUTE)) == {
        "dashboard_loading": 1, "<undefined types>": 1}
    assert status(stuck["dashboard"]) == "abandoned"
    assert status(stuck["left"]) == "in_progress"

    assert journeys.cleanup_stuck_journeys(now=at(10 * MINUTE + 1000)) == {"login": 1}
    row = UserJourney.objects.get(journey_id=stuck["left"])
    assert (row.status, row.abandoned, row.abandonment_reason) == ("abandoned", True, "timeout")
    # It ended when the user left: at the last step, 30 s in.
    assert (row.end_time, row.duration) == (at(30_000), 30_000)
    assert row.metadata["timed_out_at"] == at(10 * MINUTE + 1000).isoformat()
    assert [s["name"] for s in row.steps] == ["form_view", "credentials_submitted"]
    assert status(stuck["late"]) == "in_progress"
    assert status(stuck["done"]) == "completed"
    assert UserJourney.objects.get(journey_id="legacy-1").abandonment_reason == "timeout"


def test_running_again_changes_nothing_more(stuck, flush):
    now = at(20 * MINUTE)
    buffer.buffer.reset()  # keep only what the cleanup reports
    first = journeys.cleanup_stuck_journeys(now=now)
    assert first == {"login": 2, "dashboard_loading": 1, "<undefined types>": 1}
    snapshot = list(UserJourney.objects.order_by("pk").values())
    assert journeys.cleanup_stuck_journeys(now=now) == {}
    assert journeys.cleanup_stuck_journeys(now=now + timedelta(days=1)) == {}
    assert list(UserJourney.objects.order_by("pk").values()) == snapshot
    flush()
    abandoned = MetricRollup.objects.filter(kind="journey", dimension="abandoned")
    assert sorted((r.name, r.count) for r in abandoned) == [
        ("dashboard_loading", 1), ("legacy_flow", 1), ("login", 2)]


def test_the_celery_task_does_the_same_and_is_idempotent(stuck):
    now = at(20 * MINUTE).isoformat()
    assert tasks.cleanup_stuck_journeys.apply(kwargs={"now": now}).get() == {
        "login": 2, "dashboard_loading": 1, "<undefined types>": 1}
    assert tasks.cleanup_stuck_journeys.apply(kwargs={"now": now}).get() == {}
    assert UserJourney.objects.filter(status="in_progress").count() == 0


def test_the_cleanup_runs_every_minute_with_celery_beat():
    ensure_periodic_tasks()
    task = PeriodicTask.objects.get(task="perfmonitor.cleanup_stuck_journeys")
    assert (task.interval.every, task.interval.period, task.enabled) == (60, "seconds", True)


def test_a_run_has_a_budget_and_the_next_run_goes_on(stuck, settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "JOURNEY_CLEANUP_MAX_ROWS": 2}
    now = at(20 * MINUTE)
    assert sum(journeys.cleanup_stuck_journeys(now=now).values()) == 2
    assert sum(journeys.cleanup_stuck_journeys(now=now).values()) == 2
    assert journeys.cleanup_stuck_journeys(now=now) == {}
