"""The demo LMS runs all seven journeys for real, from its own views, across requests."""

from __future__ import annotations

import pytest
from django.db.models import Count, Q
from django.test import Client
from django.utils import timezone

from demo_project.lms.journey_hooks import STEPS
from demo_project.lms.models import (
    Booking,
    ClassSession,
    Payment,
    Student,
    Teacher,
    TeacherOnboarding,
)
from demo_project.lms.seed import DEMO_PASSWORD
from perfmonitor.journeys import get_definition, journey_types
from perfmonitor.models import UserJourney
from tests.demo.conftest import csrf_client, form_token

pytestmark = pytest.mark.django_db

GOOD_CARD = {"cardholder": "Ana Garcia", "card_number": "4242 4242 4242 4242",
             "expiry": "12/30", "cvc": "123"}
DECLINED_CARD = {**GOOD_CARD, "card_number": "4000 0000 0000 0002"}


def journey(journey_type: str) -> UserJourney:
    return UserJourney.objects.filter(journey_type=journey_type).latest("start_time")


def steps_of(row: UserJourney) -> list[str]:
    return [step["name"] for step in row.steps]


def bookable_class(student: Student) -> ClassSession:
    return (ClassSession.objects.filter(starts_at__gte=timezone.now())
            .exclude(bookings__student=student)
            .annotate(taken=Count("bookings", filter=~Q(bookings__status="cancelled")))
            .filter(taken__lt=5, capacity__gte=12).order_by("starts_at").first())


def post(client: Client, url: str, data: dict[str, str], page_url: str | None = None):
    token = form_token(client.get(page_url or url))
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def test_login_runs_from_the_form_to_the_dashboard(demo_data):
    client = csrf_client()
    response = post(client, "/login/", {"username": "student007", "password": DEMO_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200

    login = journey("login")
    assert login.status == "completed" and steps_of(login) == list(STEPS["login"])
    assert login.session_id and login.session_id != client.cookies["sessionid"].value
    dashboard = journey("dashboard_loading")
    assert dashboard.status == "completed"
    assert steps_of(dashboard) == list(STEPS["dashboard_loading"])


def test_a_wrong_password_fails_the_login_journey(demo_data):
    client = csrf_client()
    response = post(client, "/login/", {"username": "student007", "password": "guess"})
    assert response.status_code == 200 and b"enter a correct username" in response.content
    login = journey("login")
    assert login.status == "failed" and login.abandonment_reason == "invalid_credentials"
    assert login.metadata["failed_step"] == "authenticated"


def test_booking_and_paying_for_a_class(student):
    session = bookable_class(student)
    client = csrf_client()
    client.force_login(student.user)
    client.get("/classes/")
    booked = post(client, f"/classes/{session.pk}/book/", {}, page_url=f"/classes/{session.pk}/")
    booking = Booking.objects.get(student=student, session=session)
    assert booked.status_code == 302 and booked["Location"] == f"/bookings/{booking.pk}/checkout/"
    paid = post(client, booked["Location"], GOOD_CARD)
    payment = Payment.objects.get(booking=booking)
    assert paid.status_code == 302 and paid["Location"] == f"/payments/{payment.reference}/receipt/"
    receipt = client.get(paid["Location"])
    assert b"Your seat is booked" in receipt.content

    booking.refresh_from_db()
    assert booking.status == "confirmed" and payment.status == "succeeded"
    assert payment.card_last4 == "4242" and payment.amount == session.course.price
    booking_journey, payment_journey = journey("class_booking"), journey("payment_processing")
    assert booking_journey.status == payment_journey.status == "completed"
    assert steps_of(booking_journey) == list(STEPS["class_booking"])
    assert steps_of(payment_journey) == list(STEPS["payment_processing"])
    assert booking_journey.user_id == str(student.user.pk)


def test_a_declined_card_fails_the_payment_and_a_retry_succeeds(student):
    session = bookable_class(student)
    client = csrf_client()
    client.force_login(student.user)
    checkout = post(client, f"/classes/{session.pk}/book/", {},
                    page_url=f"/classes/{session.pk}/")["Location"]
    declined = post(client, checkout, DECLINED_CARD)
    assert declined.status_code == 402 and b"card was declined" in declined.content
    failed = journey("payment_processing")
    assert failed.status == "failed" and failed.abandonment_reason == "card_declined"

    retried = post(client, checkout, GOOD_CARD)
    assert retried.status_code == 302
    client.get(retried["Location"])
    assert journey("payment_processing").status == "completed"
    assert journey("class_booking").status == "completed"
    assert sorted(Payment.objects.filter(booking__session=session, student=student)
                  .values_list("status", flat=True)) == ["failed", "succeeded"]


def test_cancelling_at_checkout_abandons_the_booking(student):
    session = bookable_class(student)
    client = csrf_client()
    client.force_login(student.user)
    checkout = post(client, f"/classes/{session.pk}/book/", {},
                    page_url=f"/classes/{session.pk}/")["Location"]
    booking_pk = checkout.split("/")[2]
    cancelled = post(client, f"/bookings/{booking_pk}/cancel/", {}, page_url=checkout)
    assert cancelled.status_code == 302
    assert Booking.objects.get(pk=booking_pk).status == "cancelled"
    for journey_type in ("class_booking", "payment_processing"):
        row = journey(journey_type)
        assert row.status == "abandoned" and row.abandonment_reason == "user_cancelled"


def test_the_last_seat_taken_fails_the_booking(student):
    session = bookable_class(student)
    others = Student.objects.exclude(pk=student.pk)
    taken = session.bookings.exclude(status="cancelled").count()
    Booking.objects.bulk_create([Booking(student=s, session=session, status="confirmed")
                                 for s in others.exclude(bookings__session=session)
                                 [:session.capacity - taken]])
    client = Client()
    client.force_login(student.user)
    client.get(f"/classes/{session.pk}/")
    full = client.post(f"/classes/{session.pk}/book/")
    assert full.status_code == 409 and b"this class is full" in full.content
    row = journey("class_booking")
    assert row.status == "failed" and row.abandonment_reason == "class_full"


def test_a_new_student_registers_in_three_pages(demo_data):
    client = csrf_client()
    created = post(client, "/register/", {
        "username": "newbie", "name": "Nina Newbie", "email": "nina@example.net",
        "password1": "Study-hard-42", "password2": "Study-hard-42"})
    assert created.status_code == 302 and created["Location"] == "/register/profile/"
    profile = post(client, "/register/profile/", {"level": "intermediate",
                                                  "interests": "Guitar, Piano"})
    assert profile["Location"] == "/register/welcome/"
    assert b"Welcome to Brightpath, Nina Newbie" in client.get("/register/welcome/").content
    client.get("/dashboard/")

    student = Student.objects.get(email="nina@example.net")
    assert student.level == "intermediate" and student.user.username == "newbie"
    row = journey("student_registration")
    assert row.status == "completed"
    assert steps_of(row) == list(STEPS["student_registration"])


def test_registration_form_errors_keep_the_journey_going(demo_data):
    client = csrf_client()
    response = post(client, "/register/", {
        "username": "typo", "name": "Tim Typo", "email": "student001@example.org",
        "password1": "Study-hard-42", "password2": "Study-hard-24"})
    assert response.status_code == 200
    assert b"already exists" in response.content and b"didn" in response.content
    assert journey("student_registration").status == "in_progress"


def test_a_teacher_applies_and_is_onboarded(demo_data):
    client = csrf_client()
    page = post(client, "/teach/", {"name": "Olga Oboe", "email": "olga@example.net",
                                    "subject": "Oboe"})["Location"]
    assert page == "/teach/qualifications/"
    short = post(client, page, {"qualifications": "Yes", "years_experience": "3"})
    assert short.status_code == 200 and b"a sentence or two" in short.content
    page = post(client, page, {"qualifications": "Conservatory diploma, orchestra player.",
                               "years_experience": "12"})["Location"]
    page = post(client, page, {"weekly_hours": "6"})["Location"]
    done = post(client, page, {"agreed_to_terms": "on"})
    assert done["Location"] == "/teach/done/"
    assert b"Welcome aboard, Olga Oboe" in client.get("/teach/done/").content

    application = TeacherOnboarding.objects.get(email="olga@example.net")
    assert application.stage == "approved" and application.teacher.subject == "Oboe"
    row = journey("teacher_onboarding")
    assert row.status == "completed" and steps_of(row) == list(STEPS["teacher_onboarding"])


def test_an_existing_teacher_cannot_apply_twice(demo_data):
    client = csrf_client()
    page = post(client, "/teach/", {"name": "Again", "email": "teacher01@example.org",
                                    "subject": "Spanish"})["Location"]
    page = post(client, page, {"qualifications": "Already teaching Spanish here.",
                               "years_experience": "5"})["Location"]
    page = post(client, page, {"weekly_hours": "4"})["Location"]
    refused = post(client, page, {"agreed_to_terms": "on"})
    assert refused.status_code == 409 and b"already teaches here" in refused.content
    assert Teacher.objects.filter(email="teacher01@example.org").count() == 1
    row = journey("teacher_onboarding")
    assert row.status == "failed" and row.abandonment_reason == "duplicate_teacher"


def test_reports_run_the_report_generation_journey(teacher_client):
    teacher_client.get("/reports/?kind=attendance&days=60")
    row = journey("report_generation")
    assert row.status == "completed" and steps_of(row) == list(STEPS["report_generation"])
    assert row.metadata["kind"] == "attendance"

    teacher_client.get("/reports/?kind=attendance&days=-1")
    row = journey("report_generation")
    assert row.status == "failed" and row.abandonment_reason == "invalid_filters"


def test_the_demo_uses_every_built_in_journey_with_its_own_step_names():
    assert set(STEPS) == set(journey_types())
    for journey_type, steps in STEPS.items():
        assert get_definition(journey_type).step_names == steps
