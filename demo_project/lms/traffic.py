"""Realistic traffic for the running demo: visitors who browse, log in, book and pay,
register, apply to teach, run reports; some give up half-way, some make mistakes.

Only the given base URL is ever requested: redirects are followed by hand and only
when they stay on the same origin. A few threads share one request pacer, so the
whole generator never goes above ``rps`` requests per second.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from demo_project.lms.browser_traffic import BrowserVisitor, find_chromium
from demo_project.lms.scenarios import MIX, ROLE, Scenarios
from demo_project.lms.visitor import FlowError, Pacer, Stats, StopTraffic, Visitor


class TrafficGenerator:
    def __init__(self, base_url: str, rps: float = 5.0, concurrency: int = 3,
                 seed: int | None = None, log: Callable[[str], None] = print,
                 browser_interval: float = 0.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base URL must be http(s)://host[:port], got {base_url!r}")
        if rps <= 0 or concurrency < 1:
            raise ValueError("rps must be > 0 and concurrency >= 1")
        self.base_url = base_url
        self.stop_event = threading.Event()
        self.pacer = Pacer(rps, self.stop_event)
        self.stats = Stats()
        self.concurrency = concurrency
        self.seed = seed
        self.log = log
        self.browser: BrowserVisitor | None = None
        if browser_interval > 0:
            chromium = find_chromium()
            if chromium is None:
                log("No Chromium with Playwright found: no browser visits (no Web Vitals).")
            else:
                self.browser = BrowserVisitor(base_url, chromium, self.stop_event,
                                              browser_interval, seed, log)

    def wait_for_server(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop_event.is_set():
            try:
                requests.get(self.base_url, timeout=5, allow_redirects=False)
                return True
            except requests.RequestException:
                self.stop_event.wait(0.5)
        return False

    def run(self, duration: float = 0.0) -> dict[str, object]:
        """Drive traffic for ``duration`` seconds (0: until stop())."""
        threads = [threading.Thread(target=self._worker, args=(i,), daemon=True,
                                    name=f"traffic-{i}") for i in range(self.concurrency)]
        if self.browser is not None:
            threads.append(threading.Thread(target=self._browse, daemon=True, name="browser"))
        for t in threads:
            t.start()
        try:
            if duration > 0:
                self.stop_event.wait(duration)
                self.stop_event.set()
            else:
                while not self.stop_event.wait(30):
                    self.log(self.describe())
        finally:
            self.stop_event.set()
            for t in threads:
                t.join(timeout=35)
        return self.summary()

    def stop(self) -> None:
        self.stop_event.set()

    def summary(self) -> dict[str, object]:
        summary = self.stats.summary()
        if self.browser is not None:
            summary["browser_visits"] = self.browser.visits
            summary["browser_errors"] = self.browser.errors
        return summary

    def _browse(self) -> None:
        try:
            self.browser.run()  # type: ignore[union-attr]
        except Exception as exc:  # no usable browser here: the HTTP visitors go on
            self.log(f"browser visits stopped: {exc!r}"[:300])

    def describe(self) -> str:
        s = self.summary()
        browser = (f", browser visits {s['browser_visits']} ({s['browser_errors']} failed)"
                   if "browser_visits" in s else "")
        return (f"traffic: {s['requests']} requests, statuses {s['statuses']}, "
                f"flow errors {sum(s['flow_errors'].values())}, "
                f"generator errors {s['generator_error_count']}{browser}")

    def _worker(self, index: int) -> None:
        rng = random.Random(None if self.seed is None else self.seed + index)
        scenarios = Scenarios(rng)
        names = [name for name, _, _ in MIX]
        weights = [w for _, w, _ in MIX]
        fresh = {name for name, _, anonymous in MIX if anonymous}
        # Logged-in visitors who come back later, by role: most visits of a signed-in user
        # do not start with a login (and its deliberately expensive password hash).
        returning: dict[str, list[Visitor]] = {"student": [], "teacher": []}
        while not self.stop_event.is_set():
            name = rng.choices(names, weights)[0]
            pool = returning[ROLE.get(name, "student")]
            if name in fresh or not pool or rng.random() < 0.15:
                visitor = Visitor(self.base_url, self.pacer, self.stats)
            else:
                visitor = pool.pop(rng.randrange(len(pool)))
            try:
                getattr(scenarios, name)(visitor)
                with self.stats.lock:
                    self.stats.scenarios[name] += 1
            except StopTraffic:
                return
            except FlowError as exc:
                with self.stats.lock:
                    self.stats.flow_errors[f"{name}: {exc}"[:120]] += 1
            except requests.RequestException:
                self.stop_event.wait(1.0)  # server restarting or gone: back off
            except Exception as exc:  # a bug in a scenario: keep going, but count it
                with self.stats.lock:
                    self.stats.generator_errors.append(f"{name}: {exc!r}")
            role = "teacher" if visitor.logged_in_as.startswith("teacher") else "student"
            if visitor.logged_in_as and len(returning[role]) < 20 and rng.random() < 0.9:
                returning[role].append(visitor)
