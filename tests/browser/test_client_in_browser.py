"""The JavaScript client in headless Chromium against a live server: what a real visit stores."""

from __future__ import annotations

import pytest
from django.db.models import Min, Sum

from perfmonitor.analytics.vitals import rate
from perfmonitor.models import MetricRollup, PerformanceMetric, UserJourney, WebVital
from tests.browser.conftest import wait_for
from tests.browser.pages import REACT_UMD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CORE = {"LCP", "CLS", "INP", "FCP", "TTFB"}


def vitals_of(page_path: str, names: set[str] = CORE) -> dict[str, WebVital]:
    rows = WebVital.objects.filter(url__endswith=page_path).order_by("timestamp")
    found = {row.metric_name: row for row in rows}
    return found if names <= set(found) else {}


def painted(page) -> None:
    """Wait until the browser has painted the loaded page (two animation frames after load)."""
    page.wait_for_load_state("load")
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => "
                  "requestAnimationFrame(() => setTimeout(done, 50))))")


def leave(page) -> None:
    """The visitor goes elsewhere: the page is hidden and the client sends its beacons."""
    page.goto("about:blank")


def test_a_visit_reports_vitals_api_calls_and_errors(live_server, page):
    page.goto(f"{live_server.url}/browser-tests/fast/?token=secret")
    painted(page)
    page.click("#work")
    page.fill("#name", "Ada")
    page.type("#name", " Lovelace", delay=20)
    with page.expect_response(lambda r: "/browser-tests/data/7/?token" in r.url):
        page.click("#load")
    with page.expect_response(lambda r: "status=503" in r.url):
        page.click("#fail")
    page.click("#boom")
    with page.expect_response(lambda r: "/browser-tests/data/8/" in r.url):
        page.click("#xhr")
    page.click("#reject")
    page.wait_for_timeout(100)
    leave(page)

    vitals = wait_for(lambda: vitals_of("/browser-tests/fast/"))
    assert set(vitals) >= CORE, f"vitals that arrived: {sorted(vitals)}"
    values = {name: row.value for name, row in vitals.items()}
    # Upper bounds are loose: a busy CI machine paints late, but never this late.
    assert 0 < values["FCP"] < 30_000
    assert values["FCP"] <= values["LCP"] < 30_000
    assert 0 <= values["TTFB"] < values["FCP"]
    assert values["CLS"] == 0  # nothing moved on this page
    assert 250 <= values["INP"] < 10_000  # the click handler blocked for 250 ms
    for name, row in vitals.items():
        assert row.rating == rate(name, row.value), name
        assert row.url.endswith("/browser-tests/fast/")  # query string removed
        assert row.metadata["device"] == "desktop"
        assert row.metadata["navigation_type"] == "navigate"
    assert vitals["INP"].rating != "good"  # 250 ms or more is never good
    assert len({row.metadata["id"] for row in vitals.values()}) == len(vitals)

    calls = wait_for(lambda: list(PerformanceMetric.objects.filter(metric_type="api")
                                  .order_by("metadata__status", "metadata__method")) or None)
    assert [(c.metric_name, c.metadata["method"], c.metadata["status"]) for c in calls] == [
        ("/browser-tests/data/:id/", "GET", 200), ("/browser-tests/data/:id/", "POST", 200),
        ("/browser-tests/data/:id/", "GET", 503)]
    ok, xhr, failed = calls
    assert xhr.url.endswith("/browser-tests/data/8/") and xhr.duration > 0
    assert 0 < ok.duration < 30_000
    assert ok.url.endswith("/browser-tests/data/7/")
    assert ok.metadata["size"] > 0
    assert failed.error_details == {"status": 503, "failed": False}
    api = MetricRollup.objects.filter(kind="api", name="/browser-tests/data/:id/",
                                      dimension="GET").aggregate(Sum("count"), Sum("errors"))
    assert (api["count__sum"], api["errors__sum"]) == (2, 1)

    errors = wait_for(lambda: {e.error_details["kind"]: e for e in
                               PerformanceMetric.objects.filter(metric_type="error")}
                      if PerformanceMetric.objects.filter(metric_type="error").count() >= 2
                      else None)
    thrown, rejected = errors["error"], errors["unhandledrejection"]
    assert thrown.metric_name == "TypeError: lesson N is not loaded"
    assert thrown.error_details["message"] == "lesson 42 is not loaded"
    assert thrown.error_details["source"].endswith("/browser-tests/fast/")
    assert thrown.metadata["page"] == "/browser-tests/fast/"
    assert rejected.metric_name == "RangeError: card N declined"

    resources = wait_for(lambda: PerformanceMetric.objects.filter(metric_type="resource").first())
    assert resources.metadata["js_decoded"] > 10_000  # perfmonitor.js itself
    memory = wait_for(lambda: PerformanceMetric.objects.filter(metric_type="memory").first())
    assert memory.duration > 100_000  # bytes of JS heap in use (performance.memory)
    assert not PerformanceMetric.objects.filter(metric_name__contains="collect").exists()


def test_a_slow_page_has_a_larger_lcp_than_a_fast_one(live_server, page):
    page.goto(f"{live_server.url}/browser-tests/fast/")
    painted(page)
    leave(page)
    page.goto(f"{live_server.url}/browser-tests/slow/")
    painted(page)  # "load" waits for the hero image
    leave(page)

    fast = wait_for(lambda: vitals_of("/browser-tests/fast/", {"LCP"}))["LCP"]
    slow = wait_for(lambda: vitals_of("/browser-tests/slow/", {"LCP"}))["LCP"]
    assert slow.value >= 1500  # the hero image took 1.5 s to arrive
    assert slow.value > fast.value
    assert slow.metadata["target"] == "img#hero"
    assert slow.rating == rate("LCP", slow.value)


def test_a_page_that_shifts_its_layout_reports_cls(live_server, page):
    page.goto(f"{live_server.url}/browser-tests/shift/")
    painted(page)
    page.wait_for_timeout(800)  # the banner lands at 400 ms
    leave(page)

    cls = wait_for(lambda: vitals_of("/browser-tests/shift/", {"CLS"}))["CLS"]
    assert 0.05 < cls.value < 1
    assert cls.rating == rate("CLS", cls.value)


def test_a_back_forward_cache_restore_reports_the_vitals_again(live_server, page):
    page.goto(f"{live_server.url}/browser-tests/fast/")
    painted(page)
    # Playwright's Chromium runs with the back/forward cache disabled, so the restore is the
    # event the browser would fire: pageshow with persisted = true.
    page.evaluate("() => dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
    painted(page)
    leave(page)

    def restored():
        rows = WebVital.objects.filter(metadata__navigation_type="back-forward-cache")
        return {row.metric_name: row for row in rows} if rows.count() >= 3 else None

    again = wait_for(restored)
    assert {"TTFB", "FCP", "LCP"} <= set(again)
    assert again["TTFB"].value == 0
    assert 0 < again["FCP"].value < 10_000  # two animation frames after the restore
    first = WebVital.objects.get(metric_name="FCP", metadata__navigation_type="navigate")
    assert first.metadata["id"] != again["FCP"].metadata["id"]


@pytest.mark.skipif(not all(p.exists() for p in REACT_UMD.values()),
                    reason="React UMD builds not installed (apt-get install node-react "
                           "node-react-dom)")
def test_react_hooks_report_renders_interactions_journeys_and_show_vitals(live_server, page):
    page.goto(f"{live_server.url}/browser-tests/react/")
    painted(page)
    page.wait_for_selector("#fcp:has-text('FCP')")  # useWebVitals re-rendered with FCP
    assert page.text_content("#score").startswith("score ")  # usePerformanceScore
    page.click("#start")
    journey_id = page.text_content("#journey")
    assert journey_id
    page.click("#book")
    page.click("#book")
    page.wait_for_selector("#booked:has-text('booked 2')")
    page.click("#done")
    page.wait_for_timeout(400)  # journey events are sent within 250 ms
    leave(page)

    def interactions():
        totals = MetricRollup.objects.filter(kind="custom", name="interaction.book_class") \
            .aggregate(count=Sum("count"), fastest=Min("min"))
        return totals if totals["count"] == 2 else None

    booked = wait_for(interactions)
    assert booked["count"] == 2 and booked["fastest"] >= 60  # the handler blocks for 60 ms
    renders = wait_for(lambda: list(PerformanceMetric.objects.filter(
        metric_type="render", metric_name="LessonList")) or None)
    phases = sorted(r.metadata["phase"] for r in renders)
    assert phases[0] == "mount" and phases.count("mount") == 1 and "update" in phases
    journey = wait_for(lambda: UserJourney.objects.filter(journey_id=journey_id).first())
    assert journey.journey_type == "login"
    assert journey.status == "completed"


HIDE = """() => {
  Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""

COUNT_BEACONS = """
window.__beacons = [];
const send = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (url, body) => {
  window.__beacons.push(new Blob([body]).size);
  return send(url, body);
};
"""


def test_many_events_go_out_in_sends_of_at_most_16_kib(live_server, page):
    page.add_init_script(COUNT_BEACONS)
    page.goto(f"{live_server.url}/browser-tests/fast/")
    painted(page)
    page.evaluate("""() => { for (let i = 0; i < 400; i++)
        perfmonitor.track("quiz.answer_time", i, { unit: "ms", metadata: { q: "x".repeat(40) } });
      perfmonitor.flush(); }""")
    sizes = page.evaluate("() => window.__beacons")
    leave(page)

    assert len(sizes) >= 3 and max(sizes) <= 16 * 1024
    def quiz_totals():
        totals = MetricRollup.objects.filter(kind="custom", name="quiz.answer_time").aggregate(
            count=Sum("count"), total=Sum("sum"))
        return totals if totals["count"] == 400 else None

    quiz = wait_for(quiz_totals)  # partial rollup rows, one per flush, add up
    assert quiz == {"count": 400, "total": sum(range(400))}


def test_an_unsampled_session_sends_nothing(live_server, page, settings):
    settings.PERFMONITOR = {**settings.PERFMONITOR, "CLIENT_SAMPLE_RATE": 0.0}
    page.add_init_script(COUNT_BEACONS)
    page.goto(f"{live_server.url}/browser-tests/fast/")
    painted(page)
    page.click("#work")
    assert page.evaluate("() => perfmonitor.sampled") is False
    assert page.evaluate("() => perfmonitor.getVitals().FCP.value") > 0  # local API still works
    page.evaluate(HIDE)
    assert page.evaluate("() => window.__beacons.length") == 0


def test_hiding_a_sampled_page_sends_its_vitals_at_once(live_server, page):
    page.add_init_script(COUNT_BEACONS)
    page.goto(f"{live_server.url}/browser-tests/fast/")
    painted(page)
    page.click("#work")
    painted(page)  # the interaction's Event Timing entry exists once the next frame is shown
    page.evaluate(HIDE)  # the tab goes to the background; the page stays open
    assert page.evaluate("() => window.__beacons.length") >= 1
    vitals = wait_for(lambda: vitals_of("/browser-tests/fast/"))
    assert set(vitals) >= CORE


# Journey events are written during the request, beside the flusher's writes of the page's
# other beacons: SQLite's shared in-memory test database refuses the concurrent writer.
@pytest.mark.postgres
def test_journeys_end_from_the_page_with_a_step_reason_and_metadata(live_server, page):
    page.goto(f"{live_server.url}/browser-tests/fast/")
    painted(page)
    ids = page.evaluate("""() => {
      const j = perfmonitor.journeys;
      const paid = j.start("payment_processing");
      j.step(paid, "checkout_view");
      j.complete(paid, { amount_band: "high" });
      const declined = j.start("payment_processing");
      j.step(declined, "checkout_view");
      j.fail(declined, "payment_authorized", "card_declined", { gateway: "test" });
      const legacy = j.start("payment_processing");
      j.step(legacy, "checkout_view");
      j.fail(legacy, "closed the form");
      perfmonitor.flush();
      return { paid, declined, legacy };
    }""")

    def ended(journey_id):
        return UserJourney.objects.filter(journey_id=journey_id).exclude(
            status="in_progress").first()

    paid = wait_for(lambda: ended(ids["paid"]))
    assert (paid.status, paid.metadata["amount_band"]) == ("completed", "high")
    declined = wait_for(lambda: ended(ids["declined"]))
    assert (declined.status, declined.abandonment_reason, declined.metadata["failed_step"],
            declined.metadata["gateway"]) == ("failed", "card_declined", "payment_authorized",
                                              "test")
    legacy = wait_for(lambda: ended(ids["legacy"]))
    assert (legacy.status, legacy.abandonment_reason, legacy.metadata["failed_step"]) == (
        "failed", "closed the form", "checkout_view")
    leave(page)
