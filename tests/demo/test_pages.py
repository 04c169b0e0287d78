"""Every page of the demo LMS answers with what its visitor expects to see."""

from __future__ import annotations

import csv
import io
import json

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client
from django.utils import timezone

from demo_project.lms.models import ClassSession, Course, Report

pytestmark = pytest.mark.django_db


def next_open_class() -> ClassSession:
    return ClassSession.objects.filter(starts_at__gte=timezone.now()).order_by("starts_at").first()


def page(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, f"{url}: {response.status_code}"
    return response.content.decode()


def test_a_student_browses_the_catalogue_and_schedule(student_client):
    course = Course.objects.select_related("teacher").get(slug="python-for-beginners")
    session = next_open_class()

    assert "Popular courses" in page(student_client, "/")
    catalogue = page(student_client, "/courses/")
    assert "Algebra for Beginners" in catalogue and "Page 1 of 4" in catalogue
    assert "Python for Beginners" in page(student_client, "/courses/?page=3")
    assert "Spanish for Beginners" in page(student_client, "/courses/?subject=Languages")
    assert "Python" in page(student_client, "/courses/?q=python&level=beginner")
    detail = page(student_client, f"/courses/{course.slug}/")
    assert course.teacher.name in detail and "Upcoming classes" in detail
    schedule = page(student_client, "/classes/")
    assert f'data-class="{session.pk}"' in schedule
    assert "Book a seat" in page(student_client, f"/classes/{session.pk}/")


def test_the_student_dashboard_shows_bookings_and_payments(student_client, student):
    html = page(student_client, "/dashboard/")
    assert "Your upcoming classes" in html and "Recent payments" in html
    assert "classes attended" in html


def test_a_teacher_sees_their_classes_and_runs_every_report(teacher_client, teacher):
    dashboard = page(teacher_client, "/dashboard/")
    assert "Your upcoming classes" in dashboard and "students taught" in dashboard
    assert "Recently generated" in page(teacher_client, "/reports/")
    revenue = page(teacher_client, "/reports/?kind=revenue&days=90")
    assert "Revenue by course" in revenue and teacher.courses.first().title in revenue
    assert "Attendance by teacher" in page(teacher_client, "/reports/?kind=attendance&days=90")
    assert "Enrolment by subject" in page(teacher_client, "/reports/?kind=enrolment&days=30")
    assert Report.objects.filter(requested_by=teacher.user).count() == 3
    page(teacher_client, "/reports/?kind=revenue&days=0", status=400)


def test_the_slow_report_is_slow_on_purpose_and_still_correct(teacher_client):
    html = page(teacher_client, "/reports/slow/")
    assert "Teacher league table by month" in html and "deliberately slow" in html
    report = Report.objects.get(kind=Report.Kind.LEAGUE)
    assert report.row_count > 20 and report.duration_ms >= 300


def test_staff_see_the_school_overview(demo_data, db):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.org", "x")
    client = Client()
    client.force_login(admin)
    html = page(client, "/dashboard/")
    assert "Latest bookings" in html and "failed payments" in html


def test_students_cannot_open_reports(student_client):
    page(student_client, "/reports/", status=403)
    page(student_client, "/reports/slow/", status=403)


def test_anonymous_visitors_get_the_public_pages_and_are_sent_to_log_in(demo_data, db):
    client = Client()
    for url, text in [("/login/", "Log in"), ("/register/", "Create your student account"),
                      ("/teach/", "Teach with us"), ("/lessons-n-plus-one/", "Upcoming lessons")]:
        assert text in page(client, url)
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/dashboard/"
    page(client, "/courses/no-such-course/", status=404)


def test_every_page_carries_the_stylesheet_and_the_browser_client(student_client):
    html = page(student_client, "/")
    assert '<link rel="stylesheet" href="/static/lms/site.css">' in html
    assert 'id="perfmonitor-config"' in html
    assert 'src="/static/perfmonitor/perfmonitor.js"' in html


def test_the_json_api_lists_courses_with_their_next_class(demo_data, db):
    client = Client()
    data = json.loads(page(client, "/api/courses/?subject=Programming&limit=50"))
    assert data["count"] == 6  # Python, JavaScript and SQL, two courses each
    first = data["results"][0]
    assert {"slug", "title", "teacher", "price", "upcoming_classes", "next_class"} <= set(first)
    assert all(item["subject"] == "Programming" for item in data["results"])
    for bad in ("limit=lots", "limit=0", "limit=1000"):
        response = client.get(f"/api/courses/?{bad}")
        assert response.status_code == 400 and "limit" in response.json()["error"]


def test_bookings_export_streams_csv_to_teachers(teacher):
    @async_to_sync
    async def export() -> tuple[int, str, str, int]:
        client = AsyncClient()
        await client.aforce_login(teacher.user)
        response = await client.get("/reports/bookings.csv?days=30")
        assert response.streaming
        body = b"".join([chunk async for chunk in response.streaming_content]).decode()
        bad = await client.get("/reports/bookings.csv?days=soon")
        return response.status_code, response["Content-Type"], body, bad.status_code

    status, content_type, body, bad_status = export()
    assert status == 200 and content_type == "text/csv" and bad_status == 400
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["booking", "booked_at", "status", "student", "class", "course",
                       "starts_at"]
    assert len(rows) > 500


def test_bookings_export_is_not_for_students(student):
    @async_to_sync
    async def statuses() -> tuple[int, int]:
        client = AsyncClient()
        await client.aforce_login(student.user)
        own = await client.get("/reports/bookings.csv")
        anonymous = await AsyncClient().get("/reports/bookings.csv")
        return own.status_code, anonymous.status_code

    assert statuses() == (403, 302)
