"""Login, student registration (three pages) and the dashboard."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from demo_project.lms import journey_hooks as journeys
from demo_project.lms.forms import RegistrationForm, StudentProfileForm
from demo_project.lms.models import Booking, ClassSession, Payment, Student
from demo_project.lms.queries import ACTIVE_BOOKING, course_catalog


class LoginView(auth_views.LoginView):
    template_name = "lms/login.html"
    redirect_authenticated_user = True

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        journeys.start(request, journeys.LOGIN, "form_view")
        return super().get(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        journeys.ensure_started(request, journeys.LOGIN, "credentials_submitted")
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        journeys.step(self.request, journeys.LOGIN, "authenticated")
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        journeys.fail(self.request, journeys.LOGIN, "authenticated", "invalid_credentials")
        return super().form_invalid(form)


class LogoutView(auth_views.LogoutView):
    next_page = "lms:home"


def register(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        journeys.start(request, journeys.STUDENT_REGISTRATION, "form_view")
        return render(request, "lms/register.html", {"form": RegistrationForm()})
    journeys.ensure_started(request, journeys.STUDENT_REGISTRATION, "form_submitted")
    form = RegistrationForm(request.POST)
    if not form.is_valid():
        return render(request, "lms/register.html", {"form": form})
    with transaction.atomic():
        user = form.save(commit=False)
        user.email = form.cleaned_data["email"]
        user.first_name = form.cleaned_data["name"].split(" ")[0]
        user.save()
        Student.objects.create(user=user, name=form.cleaned_data["name"],
                               email=form.cleaned_data["email"])
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    journeys.step(request, journeys.STUDENT_REGISTRATION, "account_created")
    return redirect("lms:register-profile")


@login_required
def register_profile(request: HttpRequest) -> HttpResponse:
    student = getattr(request.user, "student", None)
    if student is None:
        return redirect("lms:dashboard")
    if request.method != "POST":
        journeys.step(request, journeys.STUDENT_REGISTRATION, "profile_view")
        return render(request, "lms/register_profile.html",
                      {"form": StudentProfileForm(instance=student)})
    form = StudentProfileForm(request.POST, instance=student)
    if not form.is_valid():
        return render(request, "lms/register_profile.html", {"form": form})
    form.save()
    journeys.step(request, journeys.STUDENT_REGISTRATION, "profile_completed")
    return redirect("lms:register-welcome")


@login_required
def register_welcome(request: HttpRequest) -> HttpResponse:
    student = getattr(request.user, "student", None)
    journeys.step(request, journeys.STUDENT_REGISTRATION, "welcome_view")
    courses = course_catalog().filter(upcoming_count__gt=0)
    if student is not None:
        courses = courses.filter(level=student.level)
    return render(request, "lms/register_welcome.html",
                  {"student": student, "courses": courses[:4]})


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    # A visitor who just logged in or registered reaches the end of that journey here.
    journeys.complete(request, journeys.LOGIN, "dashboard_loaded")
    journeys.complete(request, journeys.STUDENT_REGISTRATION, "first_dashboard")
    with journeys.within_request(request, journeys.DASHBOARD_LOADING) as journey:
        context: dict[str, Any] = {"now": timezone.now()}
        student = getattr(request.user, "student", None)
        teacher = getattr(request.user, "teacher", None)
        if student is not None:
            context.update(_student_dashboard(student, journey))
        elif teacher is not None:
            context.update(_teacher_dashboard(teacher, journey))
        else:
            context.update(_staff_dashboard(journey))
        response = render(request, "lms/dashboard.html", context)
        journey.step("rendered")
    return response


def _student_dashboard(student: Student, journey: Any) -> dict[str, Any]:
    bookings = list(
        student.bookings.filter(session__starts_at__gte=timezone.now())
        .exclude(status=Booking.Status.CANCELLED)
        .select_related("session__course", "session__teacher")
        .order_by("session__starts_at")[:10])
    payments = list(student.payments.select_related("booking__session__course")[:5])
    journey.step("bookings_loaded", {"bookings": len(bookings)})
    stats = student.payments.aggregate(
        spent=Sum("amount", filter=Q(status=Payment.Status.SUCCEEDED)),
        paid=Count("id", filter=Q(status=Payment.Status.SUCCEEDED)),
    )
    stats["attended"] = student.bookings.filter(
        status=Booking.Status.CONFIRMED, session__starts_at__lt=timezone.now()).count()
    journey.step("stats_computed")
    return {"role": "student", "student": student, "bookings": bookings,
            "payments": payments, "stats": stats}


def _teacher_dashboard(teacher: Any, journey: Any) -> dict[str, Any]:
    sessions = list(
        ClassSession.objects.filter(teacher=teacher, starts_at__gte=timezone.now())
        .select_related("course")
        .annotate(seats_taken=Count("bookings", filter=ACTIVE_BOOKING))
        .order_by("starts_at")[:10])
    journey.step("bookings_loaded", {"sessions": len(sessions)})
    stats = Payment.objects.filter(booking__session__teacher=teacher).aggregate(
        revenue=Sum("amount", filter=Q(status=Payment.Status.SUCCEEDED)),
        students=Count("student", distinct=True),
    )
    journey.step("stats_computed")
    return {"role": "teacher", "teacher": teacher, "sessions": sessions, "stats": stats}


def _staff_dashboard(journey: Any) -> dict[str, Any]:
    recent = list(Booking.objects.select_related("student", "session__course")[:10])
    journey.step("bookings_loaded", {"bookings": len(recent)})
    stats = Payment.objects.aggregate(
        revenue=Sum("amount", filter=Q(status=Payment.Status.SUCCEEDED)),
        failed=Count("id", filter=Q(status=Payment.Status.FAILED)),
        payments=Count("id"),
    )
    journey.step("stats_computed")
    return {"role": "staff", "recent": recent, "stats": stats}
