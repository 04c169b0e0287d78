"""The demo's headless-browser visitor makes the browser client report real Web Vitals."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
from django.test import override_settings

from demo_project.lms.browser_traffic import BrowserVisitor, find_chromium
from demo_project.lms.seed import seed
from perfmonitor.models import WebVital
from tests.demo.conftest import FAST_HASHER


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_browser_tour_of_the_demo_reports_web_vitals(live_server, flush):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium with Playwright is not available")
    with override_settings(PASSWORD_HASHERS=FAST_HASHER):
        seed()
    visitor = BrowserVisitor(live_server.url, chromium, threading.Event(), interval=0, seed=1)
    # Playwright's sync API runs an event loop in its thread: keep it off the test's thread.
    tour = threading.Thread(target=visitor.run, kwargs={"visits": 1})
    tour.start()
    tour.join(timeout=90)
    assert not tour.is_alive() and visitor.visits == 1 and visitor.errors == 0
    flush()

    names = set(WebVital.objects.values_list("metric_name", flat=True))
    assert {"LCP", "FCP", "TTFB", "CLS"} <= names
    pages = {urlsplit(url).path for url in
             WebVital.objects.filter(metric_name="LCP").values_list("url", flat=True)}
    assert {"/", "/courses/", "/classes/"} <= pages
    assert visitor.blocked == 0  # the demo pages load nothing from elsewhere
