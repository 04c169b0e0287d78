"""Teacher onboarding: a four-page application, an automatic review, a welcome page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from demo_project.lms import journey_hooks as journeys
from demo_project.lms.forms import (
    OnboardingAgreementForm,
    OnboardingAvailabilityForm,
    OnboardingProfileForm,
    OnboardingQualificationsForm,
)
from demo_project.lms.models import Teacher, TeacherOnboarding

SESSION_KEY = "lms_onboarding_id"
Stage = TeacherOnboarding.Stage

# page name -> (form, stage the application must be in, journey step, next stage)
PAGES: dict[str, tuple[type[forms.ModelForm], str, str, str]] = {
    "qualifications": (OnboardingQualificationsForm, Stage.QUALIFICATIONS,
                       "qualifications_submitted", Stage.AVAILABILITY),
    "availability": (OnboardingAvailabilityForm, Stage.AVAILABILITY,
                     "availability_submitted", Stage.AGREEMENT),
    "agreement": (OnboardingAgreementForm, Stage.AGREEMENT, "agreement_signed", Stage.SUBMITTED),
}
NEXT_PAGE = {Stage.QUALIFICATIONS: "qualifications", Stage.AVAILABILITY: "availability",
             Stage.AGREEMENT: "agreement"}


def _application(request: HttpRequest) -> TeacherOnboarding | None:
    pk = request.session.get(SESSION_KEY)
    return TeacherOnboarding.objects.filter(pk=pk).first() if pk else None


def _render(request: HttpRequest, form: forms.Form, page: str, application: Any,
            status: int = 200, error: str = "") -> HttpResponse:
    names = ["profile", *PAGES]
    return render(request, "lms/onboarding.html", {
        "form": form, "page": page, "application": application, "error": error,
        "position": names.index(page) + 1, "pages": len(names),
    }, status=status)


def start(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        journeys.start(request, journeys.TEACHER_ONBOARDING, "application_started")
        return _render(request, OnboardingProfileForm(), "profile", None)
    form = OnboardingProfileForm(request.POST)
    if not form.is_valid():
        return _render(request, form, "profile", None)
    application = form.save(commit=False)
    application.stage = Stage.QUALIFICATIONS
    application.save()
    request.session[SESSION_KEY] = application.pk
    journeys.ensure_started(request, journeys.TEACHER_ONBOARDING, "profile_submitted",
                            {"subject": application.subject})
    return redirect("lms:onboarding-page", page="qualifications")


def page(request: HttpRequest, page: str) -> HttpResponse:
    application = _application(request)
    if application is None or page not in PAGES:
        return redirect("lms:onboarding")
    form_class, stage, step, next_stage = PAGES[page]
    if application.stage != stage:
        target = NEXT_PAGE.get(application.stage)
        return redirect("lms:onboarding-page", page=target) if target \
            else redirect("lms:onboarding-done")
    if request.method != "POST":
        return _render(request, form_class(instance=application), page, application)
    form = form_class(request.POST, instance=application)
    if not form.is_valid():
        return _render(request, form, page, application)
    application = form.save(commit=False)
    application.stage = next_stage
    application.save()
    journeys.step(request, journeys.TEACHER_ONBOARDING, step)
    if next_stage == Stage.SUBMITTED:
        return _review(request, application)
    return redirect("lms:onboarding-page", page=NEXT_PAGE[next_stage])


def _review(request: HttpRequest, application: TeacherOnboarding) -> HttpResponse:
    """The automatic review: one teacher per email address."""
    if Teacher.objects.filter(email__iexact=application.email).exists():
        journeys.fail(request, journeys.TEACHER_ONBOARDING, "application_reviewed",
                      "duplicate_teacher")
        request.session.pop(SESSION_KEY, None)
        return _render(request, OnboardingProfileForm(), "profile", None, status=409,
                       error="A teacher with this email already teaches here.")
    with transaction.atomic():
        teacher = Teacher.objects.create(
            name=application.name, email=application.email.lower(),
            subject=application.subject, bio=application.qualifications)
        application.teacher = teacher
        application.stage = Stage.APPROVED
        application.completed_at = timezone.now()
        application.save()
    journeys.step(request, journeys.TEACHER_ONBOARDING, "application_reviewed")
    return redirect("lms:onboarding-done")


def done(request: HttpRequest) -> HttpResponse:
    application = _application(request)
    if application is None or application.stage != Stage.APPROVED:
        return redirect("lms:onboarding")
    journeys.complete(request, journeys.TEACHER_ONBOARDING, "onboarding_complete")
    return render(request, "lms/onboarding_done.html", {"application": application})
