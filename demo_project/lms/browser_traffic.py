"""A real browser among the demo's visitors, so the browser client reports real Web Vitals.

Headless Chromium (through Playwright) tours the public pages every few seconds:
it opens the home page, searches the catalogue, opens a course and a class,
sometimes the slow N+1 page, then leaves, which hides the page and makes the
client send its beacons. Every request outside the base URL's origin is
aborted, so the browser, too, only ever talks to the demo site.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 20_000


def find_chromium() -> str | None:
    """The Chromium to drive, or None when there is none (or no Playwright to drive it)."""
    path = (os.environ.get("PERFMONITOR_CHROMIUM") or shutil.which("chromium")
            or "/usr/bin/chromium")
    if not os.path.exists(path):
        return None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    return path


class BrowserVisitor:
    def __init__(self, base_url: str, executable: str, stop: threading.Event,
                 interval: float = 15.0, seed: int | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.base = base_url.rstrip("/")
        self.origin = urlsplit(self.base)[:2]
        self.executable = executable
        self.stop = stop
        self.interval = interval
        self.rng = random.Random(seed)
        self.log = log
        self.visits = 0
        self.errors = 0
        self.blocked = 0

    def _same_origin_only(self, route: Any) -> None:
        if urlsplit(route.request.url)[:2] == self.origin:
            route.continue_()
        else:
            self.blocked += 1
            route.abort()

    def run(self, visits: int = 0) -> None:
        """Tour the site until stopped (or ``visits`` times, when given)."""
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=self.executable, headless=True,
                                                 args=CHROMIUM_ARGS)
            try:
                while not self.stop.is_set():
                    self._one_visit(browser)
                    if visits and self.visits + self.errors >= visits:
                        break
                    self.stop.wait(self.interval * self.rng.uniform(0.5, 1.5))
            finally:
                browser.close()

    def _one_visit(self, browser: Any) -> None:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", self._same_origin_only)
        page = context.new_page()
        try:
            self.tour(page)
            self.visits += 1
        except Exception as exc:  # a slow or restarting server: try again next time
            self.errors += 1
            if self.errors <= 3 or self.errors % 50 == 0:
                self.log(f"browser visit failed ({self.errors} so far): {exc!r}"[:300])
        finally:
            context.close()

    def _read(self, page: Any) -> None:
        """A visitor looks at a page for a moment (and it gets painted) before moving on."""
        page.wait_for_load_state()
        page.wait_for_timeout(self.rng.uniform(400, 1200))

    def tour(self, page: Any) -> None:
        page.goto(self.base + "/")
        self._read(page)
        page.click("nav >> text=Courses")
        self._read(page)
        page.fill("input[name=q]", self.rng.choice(["python", "spanish", "piano", "data"]))
        page.press("input[name=q]", "Enter")
        self._read(page)
        course = page.locator("table a[href^='/courses/']").first
        if course.count():
            course.click()
            self._read(page)
        page.click("nav >> text=Classes")
        self._read(page)
        page.mouse.wheel(0, 600)
        page.locator("tr[data-class] a").first.click()
        self._read(page)
        if self.rng.random() < 0.3:
            page.goto(self.base + "/lessons-n-plus-one/")
            self._read(page)
        # Leaving hides the page: the client sends LCP, CLS, INP and the rest now.
        page.goto("about:blank")
        page.wait_for_timeout(300)
