"""Users and seeded data for the dashboard's stories."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission, User

from perfmonitor.capture import buffer, writer
from perfmonitor.capture.records import Measurement
from tests.testapp.models import Course

OVERVIEW = "/admin/perfmonitor/dashboard/"


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    # Users log in with a password only in the browser test; hashing cost buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username: str, *perms: str, staff: bool = True) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=staff)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label,
                                                         codename=codename))
    return user


@pytest.fixture
def viewer(db) -> User:
    return _user("viewer", "perfmonitor.view_dashboard")


@pytest.fixture
def responder(db) -> User:
    return _user("responder", "perfmonitor.view_dashboard", "perfmonitor.change_performancealert")


@pytest.fixture
def staff_without_permission(db) -> User:
    return _user("clerk")


@pytest.fixture
def traffic(db, client, flush):
    """12 course page views and 1 failing request, captured by the real middleware."""
    # The writer remembers which fingerprints it stored, per process; earlier tests' rows
    # were rolled back, so make it store them again.
    writer._known_fingerprints.clear()
    course = Course.objects.create(title="Algebra")
    for _ in range(12):
        assert client.get(f"/courses/{course.pk}/").status_code == 200
    client.raise_request_exception = False
    assert client.get("/boom/").status_code == 500
    flush()
    return {"route": "/courses/<int:pk>/", "requests": 13, "course_views": 12, "errors": 1}


@pytest.fixture
def vitals(db, flush):
    """LCP, INP and CLS of /courses/ through the capture buffer, like the collect API does."""
    now = time.time()
    values = {"LCP": [1800.0, 2100.0, 2300.0, 5200.0], "INP": [80.0, 120.0, 150.0, 600.0],
              "CLS": [0.01, 0.02, 0.05, 0.3]}
    for name, series in values.items():
        for value in series:
            buffer.push(Measurement("vital", name, value, now, dimension="/courses/"))
    flush()
    return values
