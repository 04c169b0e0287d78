"""An admin watches the dashboard in a real browser while an alert fires and is acknowledged.

Headless Chromium (Playwright) against Daphne serving HTTP and the WebSocket,
with the Redis channel layer; full-page screenshots go to
test-artifacts/dashboard/.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from perfmonitor import live
from perfmonitor.capture import buffer
from perfmonitor.capture.records import Measurement
from tests.conftest import REQUIRE_SERVICES
from tests.dashboard.alert_helpers import (
    change_an_alert_state,
    evaluate_bundle_rule,
    ship_a_large_bundle,
)
from tests.dashboard.asgi_server import server_url, wait_until_idle
from tests.dashboard.conftest import OVERVIEW
from tests.dashboard.live_helpers import redis_channel_layers

pytestmark = [pytest.mark.browser, pytest.mark.redis]

CHROMIUM = os.environ.get("PERFMONITOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if REQUIRE_SERVICES:
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture
def site(transactional_db, settings, monkeypatch) -> str:
    settings.CHANNEL_LAYERS = redis_channel_layers()
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls the
    # test makes between browser steps are plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    live.reset_throttle()
    return server_url()


def seed_six_hours_of_traffic() -> None:
    """Requests, vitals and bundles across six hours, through the capture buffer."""
    rng = random.Random(7)
    now = time.time()
    for minute in range(0, 360, 5):
        ts = now - minute * 60
        for route, base in (("/courses/<int:pk>/", 120.0), ("/lessons/", 600.0),
                            ("/checkout/", 300.0)):
            for _ in range(4):
                buffer.push(Measurement("request", route, rng.lognormvariate(0, 0.5) * base, ts,
                                        dimension="GET", error=rng.random() < 0.03))
        for name, base in (("LCP", 2200.0), ("INP", 150.0), ("CLS", 0.05), ("FCP", 1500.0),
                           ("TTFB", 500.0)):
            buffer.push(Measurement("vital", name, rng.lognormvariate(0, 0.3) * base, ts,
                                    dimension="/courses/"))
        buffer.push(Measurement("resource", "/courses/", 900_000.0, ts, dimension="js_transfer"))
        buffer.push(Measurement("resource", "/courses/", 150_000.0, ts,
                                dimension="css_transfer"))
    buffer.flush_now()


def seed_login_journeys() -> None:
    """Eight logins through the journeys API: six complete, two give up at the password."""
    from perfmonitor import journeys

    steps = ("form_view", "credentials_submitted", "authenticated", "dashboard_loaded")
    for i in range(8):
        journey_id = journeys.start("login", session=f"browser-story-{i}")
        for step in steps[: 4 if i < 6 else 2]:
            journeys.step(journey_id, step)
        if i < 6:
            journeys.complete(journey_id)
        else:
            journeys.abandon(journey_id, "closed the tab")
    buffer.flush_now()


def in_a_worker(function: Any, *args: Any, **kwargs: Any) -> Any:
    def run() -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


def settle(page: Any) -> None:
    """Let the page load before it is closed (once reached, "networkidle" does not wait for
    later requests: the test's finally also waits for the server, ``wait_until_idle``)."""
    with contextlib.suppress(Exception):  # a failed test's page: close it anyway
        page.wait_for_load_state("networkidle", timeout=10_000)


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_admin_watches_acknowledges_and_sees_a_live_update(site, chromium):
    User.objects.create_superuser("admin", "admin@example.com", "admin-pass")
    seed_six_hours_of_traffic()
    seed_login_journeys()
    first = change_an_alert_state("/enrol/")
    ship_a_large_bundle("/checkout/")  # its alert fires later, while the admin watches

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{site}/admin/login/?next={OVERVIEW}?range=6h")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "admin-pass")
        page.click("input[type=submit]")
        page.wait_for_url(f"**{OVERVIEW}?range=6h")

        # The socket joins the live group: the status line says "Live".
        page.wait_for_selector("#pm-live-status.pm-live-live", timeout=10_000)

        # The score gauge and the trend charts are SVG paths drawn from the data.
        arcs = page.locator("#pm-panel-score svg path")
        assert arcs.count() == 2  # the track and the score's arc
        assert " A " in arcs.nth(1).get_attribute("d")
        score = float(page.locator("#pm-panel-score .pm-gauge").get_attribute("data-score"))
        assert 0 < score <= 100
        assert f"{score:.0f}" in page.locator("#pm-panel-score svg").text_content()
        lines = page.locator("#pm-panel-trends svg polyline")
        assert lines.count() >= 5  # p50, p95, throughput, error rate, LCP (+ its threshold)
        assert all(len(lines.nth(i).get_attribute("points").split()) >= 10 for i in range(4))
        assert page.locator("#pm-panel-trends svg circle title").count() > 10  # tooltips
        assert page.locator('#pm-panel-routes tr[data-route="/lessons/"]').count() == 1
        login = page.locator('#pm-panel-journeys tr[data-journey="login"]')
        assert "75.0 %" in login.inner_text()  # 6 of 8 completed
        assert login.locator("svg rect").count() == 4  # one funnel bar per step
        shoot(page, "overview")

        # Acknowledge the firing alert; the panel shows it acknowledged, without a reload.
        page.evaluate("window.__notReloaded = true")
        alert_row = page.locator(f'li[data-alert="{first.pk}"]')
        assert alert_row.get_attribute("data-acknowledged") == "false"
        alert_row.locator("button.pm-ack-button").click()
        page.wait_for_selector(f'li[data-alert="{first.pk}"][data-acknowledged="true"]')
        assert "acknowledged by admin" in page.locator(f'li[data-alert="{first.pk}"]').inner_text()

        # Another page's bundle goes over budget: the engine fires, the page learns it live.
        # The engine runs in a worker thread, as in a Celery worker: this thread runs
        # Playwright's event loop, where a synchronous publish cannot reach the layer.
        # (Wait for the panels the ack refreshed first: SQLite locks tables across threads.)
        page.wait_for_load_state("networkidle")
        second = in_a_worker(evaluate_bundle_rule, "/checkout/", minutes_ahead=2)
        page.wait_for_selector(f'li[data-alert="{second.pk}"]', timeout=5_000)
        assert page.evaluate("window.__notReloaded") is True
        assert page.locator("#pm-dashboard").get_attribute("data-last-topic") == "alerts"
        assert int(page.locator("#pm-dashboard").get_attribute("data-live-messages")) >= 1
        shoot(page, "overview-after-live-update")
        page.emulate_media(color_scheme="dark")  # the admin's dark mode, charts included
        shoot(page, "overview-dark")
        page.emulate_media(color_scheme="light")

        # Drill into the route behind the slowest requests.
        page.click('#pm-panel-routes tr[data-route="/lessons/"] a')
        page.wait_for_selector("#pm-route svg rect")
        shoot(page, "route")
    except Exception:
        shoot(page, "failure")
        raise
    finally:
        settle(page)
        context.close()
        wait_until_idle()


def test_without_a_channel_layer_the_page_polls_and_says_so(site, chromium, settings):
    settings.CHANNEL_LAYERS = {}
    settings.PERFMONITOR = {**settings.PERFMONITOR, "DASHBOARD_POLL_SECONDS": 1}
    User.objects.create_superuser("admin", "admin@example.com", "admin-pass")
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{site}/admin/login/?next={OVERVIEW}")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "admin-pass")
        page.click("input[type=submit]")
        page.wait_for_selector("#pm-live-status.pm-live-polling", timeout=10_000)
        # The server closed the socket with 4503 (no layer); the page polls and says why.
        page.wait_for_function("document.querySelector('#pm-live-status').textContent"
                               ".includes('not available')", timeout=10_000)
        assert page.locator("#pm-dashboard").get_attribute("data-close-code") == "4503"
        assert "Polling every 1 s" in page.locator("#pm-live-status").inner_text()
        page.evaluate("window.__notReloaded = true")
        before = page.locator("#pm-panel-alerts .pm-updated time").get_attribute("datetime")
        page.wait_for_function(
            "before => document.querySelector('#pm-panel-alerts .pm-updated time')"
            ".getAttribute('datetime') !== before", arg=before, timeout=10_000)
        assert page.evaluate("window.__notReloaded") is True
        shoot(page, "overview-polling")

        # Auto-refresh off: polling stops. "Refresh now" still refreshes every panel.
        page.uncheck("#pm-auto-refresh")
        page.wait_for_load_state("networkidle")
        paused = page.locator("#pm-panel-alerts .pm-updated time").get_attribute("datetime")
        page.wait_for_timeout(2500)
        assert page.locator("#pm-panel-alerts .pm-updated time").get_attribute(
            "datetime") == paused
        page.click("#pm-refresh-now")
        page.wait_for_function(
            "before => document.querySelector('#pm-panel-alerts .pm-updated time')"
            ".getAttribute('datetime') !== before", arg=paused, timeout=5_000)
    except Exception:
        shoot(page, "failure-polling")
        raise
    finally:
        settle(page)
        context.close()
        wait_until_idle()
