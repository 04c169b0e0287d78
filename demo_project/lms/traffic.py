"""Realistic traffic for the running demo: visitors who browse, log in, book and pay,
register, apply to teach, run reports; some give up half-way, some make mistakes.

Only the given base URL is ever requested: redirects are followed by hand and only
when they stay on the same origin. A few threads share one request pacer, so the
whole generator never goes above ``rps`` requests per second.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests

from demo_project.lms.browser_traffic import BrowserVisitor, find_chromium
from demo_project.lms.seed import DEMO_PASSWORD, STUDENTS, TEACHERS

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) BrightpathDemoTraffic/1.0"
GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CLASS_ROW_RE = re.compile(r'data-class="(\d+)" data-seats="(\d+)"')
COURSE_RE = re.compile(r'href="(/courses/[a-z0-9-]+/)"')
CHECKOUT_RE = re.compile(r"^/bookings/(\d+)/checkout/$")
SUBJECTS = ["Languages", "Programming", "Music", "Design", "Maths", "Data"]


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


class Scenarios:
    """What visitors do. Each method is one visit; ``rng`` decides the detours."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # -- anonymous -----------------------------------------------------------
    def browse(self, v: Visitor) -> None:
        home = v.get("/")
        courses = v.get("/courses/" + self.rng.choice(
            ["", f"?subject={self.rng.choice(SUBJECTS)}", "?level=beginner", "?q=python",
             "?page=2"]))
        links = COURSE_RE.findall(courses.text) or COURSE_RE.findall(home.text)
        if links:
            v.get(self.rng.choice(links))
        v.get("/classes/")
        if self.rng.random() < 0.3:
            v.get("/api/courses/?limit=10")

    def api_client(self, v: Visitor) -> None:
        v.get(f"/api/courses/?subject={self.rng.choice(SUBJECTS)}")
        v.get("/api/courses/?limit=50")
        if self.rng.random() < 0.3:
            v.get("/api/courses/?limit=lots", expect=(400,))

    def lost_visitor(self, v: Visitor) -> None:
        v.get(self.rng.choice(["/courses/quantum-basket-weaving/", "/classes/99999999/",
                               "/wp-login.php", "/courses/python-for-experts/"]), expect=(404,))
        v.get("/")

    def n_plus_one(self, v: Visitor) -> None:
        v.get("/lessons-n-plus-one/")

    # -- students ------------------------------------------------------------
    def book_a_class(self, v: Visitor) -> None:
        self._ensure_student(v)
        listing = v.get("/classes/" + self.rng.choice(["", "?page=2", "?page=3"]))
        open_classes = [pk for pk, seats in CLASS_ROW_RE.findall(listing.text) if int(seats) > 0]
        if not open_classes:
            return
        pk = self.rng.choice(open_classes)
        detail = v.get(f"/classes/{pk}/")
        if 'id="book"' not in detail.text or self.rng.random() < 0.15:
            return  # already booked, or just looking: the journey times out
        booked = v.post(f"/classes/{pk}/book/", {}, expect=(200, 409))
        match = CHECKOUT_RE.match(v.path(booked))
        if booked.status_code == 409 or not match:
            return
        checkout = v.path(booked)
        roll = self.rng.random()
        if roll < 0.08:
            return  # closed the tab at checkout
        if roll < 0.13:
            v.post(f"/bookings/{match.group(1)}/cancel/", {})
            return
        card = DECLINED_CARD if roll < 0.23 else GOOD_CARD
        if self.rng.random() < 0.05:
            v.post(checkout, self._card("4242 4242 4242 4241"))  # typo: form error, 200
        paid = v.post(checkout, self._card(card), expect=(200, 402))
        if paid.status_code == 402:
            if self.rng.random() < 0.5:
                return  # gave up after the decline
            paid = v.post(checkout, self._card(GOOD_CARD))
        if "/receipt/" not in v.path(paid):
            raise FlowError("payment did not end on the receipt")
        v.get("/dashboard/")

    def check_dashboard(self, v: Visitor) -> None:
        self._ensure_student(v)
        v.get("/dashboard/")
        if self.rng.random() < 0.3:
            v.get("/courses/")

    def wrong_password(self, v: Visitor) -> None:
        if v.logged_in_as:
            v.logout()
        v.get("/login/")
        v.post("/login/", {"username": self._student(), "password": "letmein"})
        if self.rng.random() < 0.7:
            v.login(self._student())

    def register(self, v: Visitor) -> None:
        v.get("/register/")
        name = f"{self.rng.choice(['Sam', 'Alex', 'Robin', 'Kai', 'Jules'])} Visitor"
        username = f"visitor-{uuid.uuid4().hex[:10]}"
        email = f"{username}@example.net"
        if self.rng.random() < 0.15:  # passwords that do not match: form error, 200
            v.post("/register/", {"username": username, "name": name, "email": email,
                                  "password1": "Study-hard-42", "password2": "Study-hard-24"})
        done = v.post("/register/", {"username": username, "name": name, "email": email,
                                     "password1": "Study-hard-42", "password2": "Study-hard-42"})
        if v.path(done) != "/register/profile/":
            raise FlowError("registration did not continue to the profile page")
        v.logged_in_as = username
        if self.rng.random() < 0.12:
            return  # left before the profile: abandoned
        v.post("/register/profile/", {"level": self.rng.choice(["beginner", "intermediate"]),
                                      "interests": "Spanish, Guitar"})
        if self.rng.random() < 0.08:
            return
        v.get("/dashboard/")

    # -- teachers and staff --------------------------------------------------
    def run_reports(self, v: Visitor) -> None:
        self._ensure_teacher(v)
        v.get("/reports/")
        kind = self.rng.choice(["revenue", "attendance", "enrolment"])
        v.get(f"/reports/?kind={kind}&days={self.rng.choice([30, 90, 180])}")
        if self.rng.random() < 0.3:
            v.get("/reports/slow/")
        if self.rng.random() < 0.25:
            v.get(f"/reports/bookings.csv?days={self.rng.choice([7, 30, 90])}", stream=True)
        if self.rng.random() < 0.1:
            v.get("/reports/?kind=revenue&days=0", expect=(400,))

    def apply_to_teach(self, v: Visitor) -> None:
        v.get("/teach/")
        duplicate = self.rng.random() < 0.1
        email = f"teacher{self.rng.randint(1, TEACHERS):02d}@example.org" if duplicate \
            else f"applicant-{uuid.uuid4().hex[:10]}@example.net"
        step = v.post("/teach/", {"name": "Dana Applicant", "email": email,
                                  "subject": self.rng.choice(["Chess", "Yoga", "Italian"])})
        if self.rng.random() < 0.15:
            return  # abandoned after the first page
        if self.rng.random() < 0.2:  # too short: form error, 200
            v.post(v.path(step), {"qualifications": "Yes", "years_experience": "2"})
        step = v.post(v.path(step), {"qualifications": "Certified teacher, ten years of "
                                     "evening classes.", "years_experience": "10"})
        step = v.post(v.path(step), {"weekly_hours": str(self.rng.randint(2, 20))})
        if self.rng.random() < 0.1:
            return
        v.post(v.path(step), {"agreed_to_terms": "on"}, expect=(200, 409))

    # -- helpers ---------------------------------------------------------------
    def _student(self) -> str:
        return f"student{self.rng.randint(1, STUDENTS):03d}"

    def _ensure_student(self, v: Visitor) -> None:
        if not v.logged_in_as.startswith(("student", "visitor")):
            if v.logged_in_as:
                v.logout()
            v.login(self._student())

    def _ensure_teacher(self, v: Visitor) -> None:
        if not v.logged_in_as.startswith("teacher"):
            if v.logged_in_as:
                v.logout()
            v.login(f"teacher{self.rng.randint(1, TEACHERS):02d}")

    def _card(self, number: str) -> dict[str, str]:
        return {"cardholder": "Demo Student", "card_number": number, "expiry": "12/30",
                "cvc": "123"}


# scenario name, weight, needs a fresh (anonymous) visitor
MIX: list[tuple[str, int, bool]] = [
    ("browse", 22, True), ("book_a_class", 24, False), ("check_dashboard", 8, False),
    ("api_client", 8, True), ("lost_visitor", 5, True), ("n_plus_one", 5, True),
    ("wrong_password", 4, False), ("register", 8, True), ("run_reports", 10, False),
    ("apply_to_teach", 6, True),
]


ROLE = {"run_reports": "teacher"}


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
