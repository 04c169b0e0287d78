"""A student logs in to the demo LMS in headless Chromium; the login journey has every step.

Two ways a login journey gets recorded, both with a real browser on the demo's
own login page served by a live server:

* the demo's views (through ``demo_project/lms/journey_hooks.py``) mark the
  steps as the student's requests arrive: the form is shown, the credentials
  are posted, the user is authenticated, the dashboard is loaded;
* the page itself drives a journey with the browser client
  (``perfmonitor.journeys.start/step/complete``), whose events reach the
  server in beacons through the collect API and keep the page's own timings,
  across the navigation from the login page to the dashboard.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from demo_project.lms.models import Student
from perfmonitor.models import UserJourney
from tests.browser.conftest import browser, page, wait_for  # noqa: F401  (fixtures)
from tests.demo.conftest import DEMO_TEMPLATES, FAST_HASHER

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOGIN_STEPS = ["form_view", "credentials_submitted", "authenticated", "dashboard_loaded"]
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def demo_site(settings) -> None:
    settings.ROOT_URLCONF = "demo_project.urls"
    settings.TEMPLATES = DEMO_TEMPLATES
    settings.LOGIN_URL = "/login/"
    settings.LOGIN_REDIRECT_URL = "/dashboard/"
    settings.PASSWORD_HASHERS = FAST_HASHER


@pytest.fixture
def ada(demo_site) -> User:
    user = User.objects.create_user("ada", password=PASSWORD, first_name="Ada")
    Student.objects.create(user=user, name="Ada Lovelace", email="ada@example.com")
    return user


def log_in(page, base_url: str) -> None:  # noqa: F811
    """What the student does: open the form, type, submit, land on the dashboard."""
    page.goto(f"{base_url}/login/")
    page.wait_for_load_state("load")
    page.wait_for_timeout(150)  # reads the page
    page.click("#id_username")
    page.type("#id_username", "ada", delay=40)
    page.type("#id_password", PASSWORD, delay=40)
    with page.expect_navigation(url=f"{base_url}/dashboard/"):
        page.click("#login")
    page.wait_for_load_state("load")


def completed_login(**filters) -> UserJourney | None:
    return (UserJourney.objects.filter(journey_type="login", status="completed", **filters)
            .order_by("-start_time").first())


def test_the_demo_records_a_login_journey_with_every_step_and_its_duration(
        live_server, page, ada):  # noqa: F811
    log_in(page, live_server.url)
    assert page.locator("h1").first.inner_text()  # the dashboard rendered

    row = wait_for(lambda: completed_login(metadata__source__isnull=True))
    assert row is not None, "the login journey was not completed"
    assert [s["name"] for s in row.steps] == LOGIN_STEPS
    assert not any(s["out_of_order"] for s in row.steps)
    durations = {s["name"]: s["duration_ms"] for s in row.steps}
    assert all(ms >= 0 for ms in durations.values())
    # Typing 3 + 21 characters at 40 ms each happened between the form and the post.
    assert durations["credentials_submitted"] >= 24 * 40
    assert row.duration >= sum(durations.values()) - 1
    assert row.duration < 60_000
    assert row.user_id == "" and row.session_id  # anonymous when it began; no cookie stored


START_IN_PAGE = """() => {
  const journeys = window.perfmonitor.journeys;
  const id = journeys.start("login", {via: "page"});
  sessionStorage.setItem("login-journey", id);
  // The username field has autofocus: the form is "viewed" at the first pointer on it.
  document.querySelector("form").addEventListener(
    "pointerdown", () => journeys.step(id, "form_view"), {once: true});
  document.querySelector("form").addEventListener(
    "submit", () => journeys.step(id, "credentials_submitted"));
  return id;
}"""

FINISH_IN_PAGE = """() => {
  const journeys = window.perfmonitor.journeys;
  const id = sessionStorage.getItem("login-journey");
  journeys.step(id, "authenticated");
  return new Promise(done => requestAnimationFrame(() => {
    journeys.step(id, "dashboard_loaded");
    journeys.complete(id);
    done(id);
  }));
}"""


# The page's beacons arrive while the browser is navigating, so the live server handles
# two requests at once; in-memory SQLite gives all its threads one shared connection,
# which cannot hold two transactions. PostgreSQL gives each thread its own.
@pytest.mark.postgres
def test_the_browser_client_drives_a_login_journey_through_the_collect_api(
        live_server, page, ada):  # noqa: F811
    base = live_server.url
    page.goto(f"{base}/login/")
    page.wait_for_load_state("load")
    journey_id = page.evaluate(START_IN_PAGE)
    page.wait_for_timeout(200)  # reads the page before touching the form
    page.click("#id_username")
    page.type("#id_username", "ada", delay=40)
    page.type("#id_password", PASSWORD, delay=40)
    with page.expect_navigation(url=f"{base}/dashboard/"):
        page.click("#login")
    page.wait_for_load_state("load")
    assert page.evaluate(FINISH_IN_PAGE) == journey_id
    page.goto("about:blank")  # leaving sends the last beacon

    row = wait_for(lambda: completed_login(journey_id=journey_id))
    assert row is not None, "the page's login journey did not arrive complete"
    assert row.metadata["source"] == "browser" and row.metadata["via"] == "page"
    assert [s["name"] for s in row.steps] == LOGIN_STEPS
    durations = {s["name"]: s["duration_ms"] for s in row.steps}
    assert durations["form_view"] >= 200  # from the start to the first click on the form
    assert durations["credentials_submitted"] >= 24 * 40  # the typing
    assert all(ms >= 0 for ms in durations.values())
    assert all("client_ts" in s for s in row.steps)
    # The steps run from the start to the last step; the journey to complete(), which the
    # page calls right after the last step: on a loaded machine a few ms later.
    assert -1 < row.duration - sum(durations.values()) < 50  # duration: whole ms
