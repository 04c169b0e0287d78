"""The seven built-in journeys, and a project that adds and changes its own."""

from __future__ import annotations

import pytest

from perfmonitor import journeys
from perfmonitor.journeys.checks import check_journey_types

BUILT_IN = {  # type: (steps, target, timeout) in ms
    "student_registration": (7, 120_000, 1_800_000),
    "class_booking": (7, 180_000, 1_800_000),
    "login": (4, 10_000, 600_000),
    "payment_processing": (5, 60_000, 900_000),
    "teacher_onboarding": (7, 1_800_000, 86_400_000),
    "dashboard_loading": (4, 5_000, 120_000),
    "report_generation": (5, 15_000, 300_000),
}


def test_seven_built_in_journeys_with_their_steps_targets_and_timeouts():
    types = journeys.journey_types()
    assert {k: (len(d.steps), d.target_ms, d.timeout_ms) for k, d in types.items()} == BUILT_IN
    login = types["login"]
    assert login.step_names == ("form_view", "credentials_submitted", "authenticated",
                                "dashboard_loaded")
    assert login.step_target_ms("authenticated") == 2500  # an equal share of 10 s


def test_a_project_adds_a_type_changes_a_target_and_removes_a_type(settings):
    settings.PERFMONITOR = {"JOURNEY_TYPES": {
        "course_enrolment": {"label": "Course enrolment", "target_ms": 30_000,
                             "steps": ["catalogue_view", {"name": "enrolled",
                                                          "target_ms": 2000}]},
        "login": {"target_ms": 8000},
        "teacher_onboarding": None,
    }}
    types = journeys.journey_types()
    assert "teacher_onboarding" not in types
    assert types["login"].target_ms == 8000 and len(types["login"].steps) == 4
    enrolment = types["course_enrolment"]
    assert enrolment.step_target_ms("enrolled") == 2000  # its own target
    assert enrolment.step_target_ms("catalogue_view") == 15_000  # half of 30 s
    assert enrolment.timeout_ms == 300_000  # 10 x target, at least 5 minutes
    assert journeys.get_definition("course_enrolment").label == "Course enrolment"
    assert check_journey_types() == []


@pytest.mark.parametrize(("spec", "message"), [
    ({"checkout": {"steps": ["pay"]}}, "'target_ms'] must be a number of milliseconds"),
    ({"checkout": {"steps": [], "target_ms": 1000}}, "'steps'] must be a non-empty list"),
    ({"checkout": {"steps": ["Pay Now"], "target_ms": 1000}}, "Step name 'Pay Now'"),
    ({"checkout": {"steps": ["pay", "pay"], "target_ms": 1000}}, "lists a step twice"),
    ({"checkout": {"steps": ["pay"], "target_ms": 1000, "sla": 3}}, "unknown fields ['sla']"),
    ({"Checkout": {"steps": ["pay"], "target_ms": 1000}}, "Journey type 'Checkout'"),
    ({"login": {"target_ms": -5}}, "greater than 0"),
    ({"login": "fast"}, "must be a dict (or None to remove"),
])
def test_a_bad_definition_is_a_system_check_error_naming_the_problem(settings, spec, message):
    settings.PERFMONITOR = {"JOURNEY_TYPES": spec}
    errors = check_journey_types()
    assert [e.id for e in errors] == ["perfmonitor.E020"]
    assert message in errors[0].msg
