"""One simulated visitor of the demo site, and what the visitors share: the request pacer
and the statistics.

A visitor only ever requests the base URL's origin: redirects are followed by hand,
and only when they stay on that origin.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests

from demo_project.lms.seed import DEMO_PASSWORD

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) BrightpathDemoTraffic/1.0"
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class FlowError(Exception):
    """The site answered something a scenario cannot go on from (counted, not raised)."""


class StopTraffic(Exception):
    pass


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    scenarios: Counter[str] = field(default_factory=Counter)
    flow_errors: Counter[str] = field(default_factory=Counter)
    generator_errors: list[str] = field(default_factory=list)
    connection_errors: int = 0

    def count(self, status: int) -> None:
        with self.lock:
            self.requests += 1
            self.statuses[status] += 1

    def summary(self) -> dict[str, object]:
        with self.lock:
            return {
                "requests": self.requests,
                "statuses": dict(sorted(self.statuses.items())),
                "server_errors": sum(n for s, n in self.statuses.items() if s >= 500),
                "scenarios": dict(self.scenarios),
                "flow_errors": dict(self.flow_errors),
                "generator_errors": list(self.generator_errors[-10:]),
                "generator_error_count": len(self.generator_errors),
                "connection_errors": self.connection_errors,
            }


class Pacer:
    """Hands out request slots ``1 / rps`` seconds apart, shared by every thread."""

    def __init__(self, rps: float, stop: threading.Event) -> None:
        self.interval = 1.0 / rps
        self.stop = stop
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if self.stop.wait(max(0.0, slot - now)):
            raise StopTraffic


class Visitor:
    """One browser: its own cookies, a CSRF token from the last form, same-origin only."""

    def __init__(self, base_url: str, pacer: Pacer, stats: Stats, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/") + "/"
        self.origin = urlsplit(self.base)[:2]
        self.pacer = pacer
        self.stats = stats
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers["User-Agent"] = USER_AGENT
        self.csrf = ""
        self.logged_in_as = ""

    def _url(self, path: str) -> str:
        url = urljoin(self.base, path.lstrip("/"))
        if urlsplit(url)[:2] != self.origin:
            raise FlowError(f"refusing to leave {self.base}: {url}")
        return url

    def request(self, method: str, path: str, data: dict[str, str] | None = None,
                expect: tuple[int, ...] = (200,), stream: bool = False) -> requests.Response:
        url = self._url(path)
        for _hop in range(6):
            self.pacer.wait()
            headers = {"Referer": url} if method == "POST" else {}
            try:
                response = self.http.request(method, url, data=data, headers=headers,
                                             allow_redirects=False, timeout=self.timeout,
                                             stream=stream)
                if stream:
                    for _chunk in response.iter_content(65536):
                        pass
            except requests.RequestException:
                with self.stats.lock:
                    self.stats.connection_errors += 1
                raise
            self.stats.count(response.status_code)
            if response.is_redirect:
                url = self._url(urljoin(url, response.headers["Location"]))
                method, data = "GET", None
                continue
            break
        else:
            raise FlowError(f"too many redirects from {path}")
        token = CSRF_RE.search(response.text) if not stream else None
        if token:
            self.csrf = token.group(1)
        if response.status_code not in expect:
            raise FlowError(f"{method} {path} -> {response.status_code}")
        return response

    def get(self, path: str, expect: tuple[int, ...] = (200,), stream: bool = False
            ) -> requests.Response:
        return self.request("GET", path, expect=expect, stream=stream)

    def post(self, path: str, data: dict[str, str], expect: tuple[int, ...] = (200,)
             ) -> requests.Response:
        if not self.csrf:
            self.csrf = self.http.cookies.get("csrftoken", "")
        return self.request("POST", path, {**data, "csrfmiddlewaretoken": self.csrf}, expect)

    def path(self, response: requests.Response) -> str:
        return urlsplit(response.url).path

    def login(self, username: str, password: str = DEMO_PASSWORD) -> requests.Response:
        self.get("/login/")
        response = self.post("/login/", {"username": username, "password": password})
        if self.path(response) != "/dashboard/":
            raise FlowError(f"login as {username} did not reach the dashboard")
        self.logged_in_as = username
        return response

    def logout(self) -> None:
        self.post("/logout/", {})
        self.logged_in_as = ""
