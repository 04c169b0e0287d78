"""The demo LMS under test: its URLs and templates, and its seeded data set.

The data set is seeded once per test module (committed outside the tests'
transactions) and removed when the module is done; each test's own changes
roll back as usual.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from demo_project.lms.models import (
    Booking,
    ClassSession,
    Course,
    Payment,
    Report,
    Student,
    Teacher,
    TeacherOnboarding,
)
from demo_project.lms.seed import seed

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo_project"
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEMO_TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [DEMO_DIR / "templates"],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(autouse=True)
def demo_site(settings):
    settings.ROOT_URLCONF = "demo_project.urls"
    settings.TEMPLATES = DEMO_TEMPLATES
    settings.LOGIN_URL = "/login/"
    settings.LOGIN_REDIRECT_URL = "/dashboard/"
    settings.PASSWORD_HASHERS = FAST_HASHER


def wipe_demo_data() -> None:
    for model in (Payment, Booking, ClassSession, Course, TeacherOnboarding, Report, Teacher,
                  Student):
        model.objects.all().delete()
    get_user_model().objects.all().delete()


@pytest.fixture(scope="module")
def demo_data(django_db_setup, django_db_blocker):
    """The seeded LMS: 20 teachers, 200 students, 40 courses, ~300 classes."""
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHER):
        seed()
    yield
    with django_db_blocker.unblock():
        wipe_demo_data()


@pytest.fixture
def student(demo_data, db):
    return Student.objects.select_related("user").get(user__username="student001")


@pytest.fixture
def teacher(demo_data, db):
    return Teacher.objects.select_related("user").get(user__username="teacher01")


@pytest.fixture
def student_client(student) -> Client:
    client = Client()
    client.force_login(student.user)
    return client


@pytest.fixture
def teacher_client(teacher) -> Client:
    client = Client()
    client.force_login(teacher.user)
    return client


def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def form_token(response) -> str:
    match = CSRF_RE.search(response.content.decode())
    assert match, "the page has no form with a CSRF token"
    return match.group(1)
