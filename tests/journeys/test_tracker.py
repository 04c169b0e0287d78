"""A developer marks journeys from Python: start, steps, end, and every rule around them."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.db import connection, transaction

from perfmonitor import journeys
from perfmonitor.models import MetricRollup, UserJourney
from tests.journeys.conftest import at
from tests.testapp.models import Course

pytestmark = pytest.mark.django_db


def rollups(kind: str) -> dict[str, tuple[int, float]]:
    """(count, sum) per dimension of the login series."""
    out: dict[str, tuple[int, float]] = {}
    for row in MetricRollup.objects.filter(kind=kind, name="login"):
        count, total = out.get(row.dimension, (0, 0.0))
        out[row.dimension] = (count + row.count, total + row.sum)
    return out


def test_a_login_journey_records_every_step_with_its_duration(flush):
    user = User.objects.create_user("ada")
    journey_id = journeys.start("login", user=user, session="s-1",
                                metadata={"device": "mobile"}, at=at(0))
    journeys.step(journey_id, "form_view", at=at(100))
    journeys.step(journey_id, "credentials_submitted", {"remember_me": True}, at=at(2100))
    journeys.step(journey_id, "authenticated", at=at(2600))
    journeys.step(journey_id, "dashboard_loaded", at=at(2900))
    assert journeys.complete(journey_id, at=at(3000)) is True

    row = UserJourney.objects.get(journey_id=journey_id)
    assert (row.status, row.completed, row.abandoned) == ("completed", True, False)
    assert row.duration == 3000 and row.end_time == at(3000)
    assert (row.user_id, row.session_id, row.metadata) == (str(user.pk), "s-1",
                                                           {"device": "mobile"})
    assert [(s["name"], s["index"], s["duration_ms"], s["out_of_order"]) for s in row.steps] == [
        ("form_view", 0, 100.0, False), ("credentials_submitted", 1, 2000.0, False),
        ("authenticated", 2, 500.0, False), ("dashboard_loaded", 3, 300.0, False)]
    assert row.steps[1]["metadata"] == {"remember_me": True}
    assert row.steps[1]["started_at"] == at(100).isoformat()

    flush()
    assert rollups("journey") == {"started": (1, 0.0), "completed": (1, 3000.0)}
    assert rollups("journey_step") == {
        "form_view": (1, 100.0), "credentials_submitted": (1, 2000.0),
        "authenticated": (1, 500.0), "dashboard_loaded": (1, 300.0)}


def test_completing_twice_changes_nothing_the_second_time(flush):
    journey_id = journeys.start("login", at=at(0))
    assert journeys.complete(journey_id, at=at(4000)) is True
    assert journeys.complete(journey_id, at=at(9000)) is True
    row = UserJourney.objects.get(journey_id=journey_id)
    assert row.end_time == at(4000) and row.duration == 4000
    flush()
    assert rollups("journey")["completed"] == (1, 4000.0)


def test_a_step_after_completion_is_rejected_and_logged(caplog):
    journey_id = journeys.start("login", at=at(0))
    journeys.step(journey_id, "form_view", at=at(10))
    journeys.complete(journey_id, at=at(20))
    with caplog.at_level(logging.WARNING, logger="perfmonitor"):
        assert journeys.step(journey_id, "authenticated", at=at(30)) is False
    assert "already completed" in caplog.text
    assert [s["name"] for s in UserJourney.objects.get(journey_id=journey_id).steps] == [
        "form_view"]


def test_a_different_ending_after_the_end_is_rejected():
    journey_id = journeys.start("login")
    journeys.complete(journey_id)
    assert journeys.abandon(journey_id, "closed_tab") is False
    assert journeys.fail(journey_id, "authenticated", "locked") is False
    assert UserJourney.objects.get(journey_id=journey_id).status == "completed"


def test_out_of_order_steps_are_recorded_and_flagged():
    journey_id = journeys.start("login", at=at(0))
    journeys.step(journey_id, "form_view", at=at(100))
    journeys.step(journey_id, "authenticated", at=at(300))  # skipped credentials_submitted
    journeys.step(journey_id, "credentials_submitted", at=at(600))  # went back
    journeys.step(journey_id, "form_view", at=at(700))  # again
    steps = UserJourney.objects.get(journey_id=journey_id).steps
    assert [(s["name"], s["out_of_order"], s.get("repeat", False), s["duration_ms"])
            for s in steps] == [
        ("form_view", False, False, 100.0), ("authenticated", True, False, 200.0),
        ("credentials_submitted", True, False, 300.0), ("form_view", True, True, 100.0)]


def test_unknown_types_steps_and_malformed_input_raise_clear_errors():
    with pytest.raises(journeys.UnknownJourneyType, match="'checkout'.*known types: class_booking"):
        journeys.start("checkout")
    journey_id = journeys.start("login")
    with pytest.raises(journeys.UnknownStep, match="'pay' is not a step of the 'login' journey"):
        journeys.step(journey_id, "pay")
    with pytest.raises(journeys.UnknownStep):
        journeys.fail(journey_id, "pay", "card_declined")
    with pytest.raises(journeys.InvalidJourneyInput, match="Journey id"):
        journeys.step("not a valid id!", "form_view")
    with pytest.raises(journeys.InvalidJourneyInput, match="the limit is 4096"):
        journeys.step(journey_id, "form_view", {"blob": "x" * 5000})
    assert issubclass(journeys.UnknownStep, journeys.JourneyError)
    assert UserJourney.objects.get(journey_id=journey_id).steps == []


def test_fail_and_abandon_end_the_journey_with_their_reason(flush):
    failed = journeys.start("login", at=at(0))
    journeys.step(failed, "credentials_submitted", at=at(1500))
    assert journeys.fail(failed, "authenticated", "invalid_password", at=at(2000)) is True
    gave_up = journeys.start("login", at=at(0))
    assert journeys.abandon(gave_up, "closed_tab", at=at(5000)) is True

    row = UserJourney.objects.get(journey_id=failed)
    assert (row.status, row.completed, row.abandoned, row.abandonment_reason) == (
        "failed", False, False, "invalid_password")
    assert row.metadata["failed_step"] == "authenticated" and row.duration == 2000
    row = UserJourney.objects.get(journey_id=gave_up)
    assert (row.status, row.abandoned, row.abandonment_reason, row.duration) == (
        "abandoned", True, "closed_tab", 5000)
    flush()
    assert rollups("journey") == {"started": (2, 0.0), "failed": (1, 2000.0),
                                  "abandoned": (1, 5000.0)}
    assert MetricRollup.objects.get(kind="journey", dimension="failed").errors == 1


def test_an_unknown_journey_id_is_logged_not_raised():
    assert journeys.step("0123456789abcdef", "form_view") is False
    assert journeys.complete("0123456789abcdef") is False


def test_a_database_failure_never_breaks_the_hosts_transaction(caplog):
    table = UserJourney._meta.db_table
    with transaction.atomic():
        Course.objects.create(title="Algebra")
        with connection.cursor() as cursor:  # the journeys table is gone for a moment
            cursor.execute(f"ALTER TABLE {table} RENAME TO pm_journeys_hidden")
        with caplog.at_level(logging.WARNING, logger="perfmonitor"):
            journey_id = journeys.start("login")
            assert journeys.step(journey_id, "form_view") is False
        assert Course.objects.count() == 1  # the host's transaction goes on
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE pm_journeys_hidden RENAME TO {table}")
    assert "could not be" in caplog.text
    assert not UserJourney.objects.exists()


def test_the_context_manager_completes_on_exit_and_fails_on_an_exception():
    with journeys.track("report_generation", metadata={"report": "revenue"}) as journey:
        journey.step("report_requested")
        journey.step("filters_validated")
        assert journeys.current() is journey
    assert journeys.current() is None
    done = UserJourney.objects.get(journey_id=journey.id)
    assert done.status == "completed" and len(done.steps) == 2

    with pytest.raises(ZeroDivisionError), journeys.track("report_generation") as broken:
        broken.step("report_requested")
        broken.step("filters_validated")
        1 / 0  # noqa: B018
    row = UserJourney.objects.get(journey_id=broken.id)
    assert (row.status, row.abandonment_reason, row.metadata["failed_step"]) == (
        "failed", "ZeroDivisionError", "filters_validated")


def test_a_journey_ended_inside_the_block_is_not_completed_again():
    with journeys.track("payment_processing") as journey:
        journey.step("checkout_view")
        journey.abandon("card_form_closed")
    assert UserJourney.objects.get(journey_id=journey.id).status == "abandoned"


def test_the_decorator_runs_a_function_as_one_journey():
    @journeys.tracked("dashboard_loading", user=lambda user: user,
                      metadata=lambda user: {"plan": "pro"})
    def dashboard(user: User) -> str:
        journey = journeys.current()
        for name in ("request_received", "bookings_loaded", "stats_computed", "rendered"):
            journey.step(name)
        return "page"

    user = User.objects.create_user("grace")
    assert dashboard(user) == "page"
    row = UserJourney.objects.get(journey_type="dashboard_loading")
    assert (row.status, row.user_id, row.metadata) == ("completed", str(user.pk), {"plan": "pro"})
    assert [s["name"] for s in row.steps] == ["request_received", "bookings_loaded",
                                              "stats_computed", "rendered"]


def test_the_decorator_and_context_manager_work_in_async_code():
    @journeys.tracked("report_generation")
    async def report() -> None:
        await journeys.current().step("report_requested")
        raise RuntimeError("warehouse down")

    async def main() -> str:
        async with journeys.atrack("login") as journey:
            await journey.step("form_view")
        with pytest.raises(RuntimeError):
            await report()
        return journey.id

    login_id = async_to_sync(main)()
    assert UserJourney.objects.get(journey_id=login_id).status == "completed"
    failed = UserJourney.objects.get(journey_type="report_generation")
    assert (failed.status, failed.abandonment_reason) == ("failed", "RuntimeError")


def test_an_unknown_type_in_a_decorator_fails_at_definition_time():
    with pytest.raises(journeys.UnknownJourneyType):
        journeys.tracked("nope")
