"""Public pages: home, course catalogue, class schedule, and the deliberate N+1 page."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from demo_project.lms import journey_hooks as journeys
from demo_project.lms.forms import CourseFilterForm
from demo_project.lms.models import Booking, ClassSession, Course, Student, Teacher
from demo_project.lms.queries import course_catalog, upcoming_sessions

PAGE_SIZE = 12


def home(request: HttpRequest) -> HttpResponse:
    stats = {
        "courses": Course.objects.filter(published=True).count(),
        "teachers": Teacher.objects.filter(active=True).count(),
        "students": Student.objects.count(),
        "upcoming": ClassSession.objects.filter(starts_at__gte=timezone.now()).count(),
    }
    featured = course_catalog().filter(upcoming_count__gt=0).order_by("-upcoming_count")[:6]
    return render(request, "lms/home.html", {
        "stats": stats, "featured": featured, "next_classes": upcoming_sessions()[:5],
    })


def course_list(request: HttpRequest) -> HttpResponse:
    form = CourseFilterForm(request.GET or None)
    courses = course_catalog()
    if form.is_valid():
        data = form.cleaned_data
        if data["q"]:
            courses = courses.filter(Q(title__icontains=data["q"]) |
                                     Q(summary__icontains=data["q"]))
        if data["subject"]:
            courses = courses.filter(subject__iexact=data["subject"])
        if data["level"]:
            courses = courses.filter(level=data["level"])
    page = Paginator(courses, PAGE_SIZE).get_page(request.GET.get("page"))
    subjects = (Course.objects.filter(published=True).values_list("subject", flat=True)
                .distinct().order_by("subject"))
    return render(request, "lms/course_list.html", {
        "form": form, "page": page, "subjects": subjects,
    })


def course_detail(request: HttpRequest, slug: str) -> HttpResponse:
    course = get_object_or_404(Course.objects.select_related("teacher"), slug=slug,
                               published=True)
    sessions = upcoming_sessions().filter(course=course)[:10]
    stats = Booking.objects.filter(session__course=course).aggregate(
        students=Count("student", distinct=True),
        confirmed=Count("id", filter=Q(status=Booking.Status.CONFIRMED)),
    )
    revenue = course.sessions.aggregate(
        total=Sum("bookings__payments__amount",
                  filter=Q(bookings__payments__status="succeeded")))["total"]
    return render(request, "lms/course_detail.html", {
        "course": course, "sessions": sessions, "stats": stats, "revenue": revenue,
    })


def class_list(request: HttpRequest) -> HttpResponse:
    sessions = upcoming_sessions()
    subject = request.GET.get("subject", "")
    if subject:
        sessions = sessions.filter(course__subject__iexact=subject)
    page = Paginator(sessions, 20).get_page(request.GET.get("page"))
    if request.user.is_authenticated and not journeys.current(request, journeys.CLASS_BOOKING):
        journeys.start(request, journeys.CLASS_BOOKING, "class_list_view",
                       {"subject": subject or "any"})
    return render(request, "lms/class_list.html", {"page": page, "subject": subject})


def class_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(upcoming_sessions(), pk=pk)
    already_booked = False
    student = getattr(request.user, "student", None) if request.user.is_authenticated else None
    if student is not None:
        already_booked = session.bookings.filter(student=student).exclude(
            status=Booking.Status.CANCELLED).exists()
        journeys.ensure_started(request, journeys.CLASS_BOOKING, "class_detail_view",
                                {"course": session.course.slug})
    return render(request, "lms/class_detail.html", {
        "session": session, "student": student, "already_booked": already_booked,
        "seats_left": max(session.capacity - session.seats_taken, 0),
    })


def lessons_n_plus_one(request: HttpRequest) -> HttpResponse:
    """Deliberately slow: the template reads each lesson's course, teacher and booking
    count lazily, one query per lesson each (1 + 3N queries). /classes/ shows the same
    data with one joined, annotated query."""
    lessons = ClassSession.objects.filter(starts_at__gte=timezone.now()).order_by("starts_at")[:30]
    return render(request, "lms/lessons_n_plus_one.html", {"lessons": lessons})
