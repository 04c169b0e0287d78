"""Staff read journeys over the API; everyone else is turned away."""

from __future__ import annotations

import pytest

from perfmonitor import journeys

pytestmark = pytest.mark.django_db
API = "/perfmonitor/api/v1"
READS = [f"{API}/journey-types", f"{API}/journey-types/login/analysis",
         f"{API}/journey-types/login/metrics", f"{API}/journeys", f"{API}/journeys/abc"]


@pytest.mark.parametrize("url", READS)
def test_anonymous_and_staff_without_the_permission_are_refused(client, clerk, url):
    assert client.get(url).status_code == 403
    client.force_login(clerk)
    assert client.get(url).status_code == 403


def test_journey_types_list_steps_and_targets(client, viewer):
    client.force_login(viewer)
    types = {t["key"]: t for t in client.get(f"{API}/journey-types").json()["types"]}
    assert {k: (len(t["steps"]), t["target_ms"]) for k, t in types.items()} == {
        "student_registration": (7, 120_000), "class_booking": (7, 180_000),
        "login": (4, 10_000), "payment_processing": (5, 60_000),
        "teacher_onboarding": (7, 1_800_000), "dashboard_loading": (4, 5_000),
        "report_generation": (5, 15_000)}
    assert types["login"]["steps"][0] == {"name": "form_view", "label": "Form view",
                                          "target_ms": 2500.0, "own_target": False}


def test_analysis_of_a_type_over_a_window(client, viewer):
    journey_id = journeys.start("login", metadata={"device": "mobile"})
    journeys.step(journey_id, "form_view")
    journeys.complete(journey_id)
    client.force_login(viewer)
    report = client.get(f"{API}/journey-types/login/analysis?window=6h&breakdown=device").json()
    assert report["counts"]["completed"] == 1
    assert report["breakdown"]["values"][0]["value"] == "mobile"
    assert report["funnel"]["steps"][0]["reached"] == 1


def test_metrics_of_a_type(client, viewer, flush):
    journeys.complete(journeys.start("login"))
    flush()
    client.force_login(viewer)
    body = client.get(f"{API}/journey-types/login/metrics?window=15m").json()
    assert body["metrics"]["completion_rate"] == 1.0 and body["target_ms"] == 10_000


def test_recent_journeys_and_one_journey_with_every_step(client, viewer):
    journey_id = journeys.start("login")
    journeys.step(journey_id, "form_view")
    journeys.fail(journey_id, "authenticated", "invalid_password")
    journeys.start("class_booking")
    client.force_login(viewer)
    listed = client.get(f"{API}/journeys?type=login&status=failed&limit=5").json()["journeys"]
    assert [j["journey_id"] for j in listed] == [journey_id]
    detail = client.get(f"{API}/journeys/{journey_id}").json()
    assert (detail["status"], detail["abandonment_reason"]) == ("failed", "invalid_password")
    assert [(s["name"], s["duration_ms"] >= 0) for s in detail["steps"]] == [("form_view", True)]


@pytest.mark.parametrize(("url", "status", "field"), [
    (f"{API}/journey-types/login/analysis?window=forever", 400, "window"),
    (f"{API}/journey-types/login/analysis?window=900d", 400, "window"),
    (f"{API}/journey-types/login/analysis?breakdown=a;b", 400, "breakdown"),
    (f"{API}/journey-types/login/metrics?window=0m", 400, "window"),
    (f"{API}/journeys?status=lost", 400, "status"),
    (f"{API}/journeys?limit=1000", 400, "limit"),
    (f"{API}/journeys?limit=-1", 400, "limit"),
    (f"{API}/journey-types/checkout/analysis", 404, None),
    (f"{API}/journeys?type=checkout", 404, None),
    (f"{API}/journeys/no-such-journey", 404, None),
    (f"{API}/journeys/bad%20id", 404, None),
])
def test_bad_parameters_get_a_4xx_naming_the_problem(client, viewer, url, status, field):
    client.force_login(viewer)
    response = client.get(url)
    assert response.status_code == status
    if field:
        assert field in response.json()


def test_the_endpoints_are_in_the_openapi_schema(client):
    schema = client.get(f"{API}/schema?format=json").json()
    assert {"/perfmonitor/api/v1/journey-types", "/perfmonitor/api/v1/journeys",
            "/perfmonitor/api/v1/journey-types/{journey_type}/analysis"} <= set(schema["paths"])
