"""`manage.py seed_demo` builds a realistic LMS once; running it again changes nothing."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from demo_project.lms.models import Booking, ClassSession, Course, Payment, Student, Teacher
from demo_project.lms.seed import DEMO_PASSWORD, seed


def table_sizes() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (get_user_model(), Teacher, Student, Course, ClassSession, Booking,
                          Payment)}


@pytest.mark.django_db
def test_seeding_twice_creates_the_data_set_once():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "Seeded 220 users, 20 teachers, 200 students, 40 courses" in out.getvalue()
    first = table_sizes()

    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "already present" in out.getvalue()
    assert table_sizes() == first

    assert first["Teacher"] == 20 and first["Student"] == 200 and first["Course"] == 40
    assert 250 <= first["ClassSession"] <= 350
    assert first["Booking"] > 1500 and first["Payment"] > first["Booking"] * 0.9


@pytest.mark.django_db
def test_the_data_set_looks_like_a_school_in_session():
    seed()
    now = timezone.now()
    upcoming = ClassSession.objects.filter(starts_at__gte=now)
    assert upcoming.count() > 80, "students need classes to book"
    assert ClassSession.objects.filter(starts_at__lt=now).count() > 100, "reports need history"
    # Every course is taught by the teacher of its topic, every class by its course's teacher.
    assert not ClassSession.objects.exclude(teacher=F("course__teacher")).exists()
    # Payments tell a realistic story: mostly succeeded, some declined, a few refunds.
    statuses = {s: Payment.objects.filter(status=s).count()
                for s in ("succeeded", "failed", "refunded")}
    assert statuses["succeeded"] > 10 * statuses["failed"] > 0
    assert statuses["refunded"] > 0
    # No class is overbooked.
    for session in ClassSession.objects.all()[:100]:
        assert session.bookings.exclude(status="cancelled").count() <= session.capacity
    # The demo logins printed by `make demo` work.
    assert authenticate(username="student001", password=DEMO_PASSWORD) is not None
    assert authenticate(username="teacher01", password=DEMO_PASSWORD).teacher.courses.count() == 2


@pytest.mark.django_db
def test_seeding_on_a_later_day_adds_only_that_days_classes():
    today = timezone.localdate()
    seed(today)
    before = set(ClassSession.objects.values_list("code", flat=True))
    later = seed(today + timedelta(days=3))
    after = set(ClassSession.objects.values_list("code", flat=True))
    assert before < after
    assert later.created.get("users", 0) == 0 and later.created.get("courses", 0) == 0
    new_days = {code.rsplit("-", 2)[1] for code in after - before}
    assert min(new_days) >= (today + timedelta(days=30)).strftime("%Y%m%d")
    assert seed(today + timedelta(days=3)).total == 0

