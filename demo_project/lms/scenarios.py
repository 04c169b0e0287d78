"""What the demo's simulated visitors do: each method is one visit, with its detours."""

from __future__ import annotations

import random
import re
import uuid

from demo_project.lms.seed import STUDENTS, TEACHERS
from demo_project.lms.visitor import FlowError, Visitor

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
CLASS_ROW_RE = re.compile(r'data-class="(\d+)" data-seats="(\d+)"')
COURSE_RE = re.compile(r'href="(/courses/[a-z0-9-]+/)"')
CHECKOUT_RE = re.compile(r"^/bookings/(\d+)/checkout/$")
SUBJECTS = ["Languages", "Programming", "Music", "Design", "Maths", "Data"]


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
