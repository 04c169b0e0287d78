"""The demo LMS: teachers teach courses in scheduled class sessions; students book
seats and pay for them; new teachers go through onboarding; staff run reports."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Teacher(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="teacher")
    name = models.CharField(max_length=120)
    email = models.EmailField(unique=True)
    subject = models.CharField(max_length=80)
    bio = models.TextField(blank=True)
    hourly_rate = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("40.00"))
    rating = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("4.50"))
    active = models.BooleanField(default=True)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Student(models.Model):
    class Level(models.TextChoices):
        BEGINNER = "beginner", "Beginner"
        INTERMEDIATE = "intermediate", "Intermediate"
        ADVANCED = "advanced", "Advanced"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="student")
    name = models.CharField(max_length=120)
    email = models.EmailField(unique=True)
    level = models.CharField(max_length=16, choices=Level.choices, default=Level.BEGINNER)
    interests = models.CharField(max_length=200, blank=True)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Course(models.Model):
    title = models.CharField(max_length=160)
    slug = models.SlugField(max_length=160, unique=True)
    subject = models.CharField(max_length=80, db_index=True)
    level = models.CharField(max_length=16, choices=Student.Level.choices,
                             default=Student.Level.BEGINNER)
    teacher = models.ForeignKey(Teacher, on_delete=models.PROTECT, related_name="courses")
    summary = models.CharField(max_length=300)
    description = models.TextField()
    price = models.DecimalField(max_digits=8, decimal_places=2)
    published = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("lms:course-detail", args=[self.slug])


class ClassSession(models.Model):
    """One scheduled class of a course: a time, a room and a number of seats."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CANCELLED = "cancelled", "Cancelled"
        DONE = "done", "Done"

    code = models.CharField(max_length=40, unique=True)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="sessions")
    teacher = models.ForeignKey(Teacher, on_delete=models.PROTECT, related_name="sessions")
    starts_at = models.DateTimeField(db_index=True)
    duration_minutes = models.PositiveIntegerField(default=60)
    capacity = models.PositiveIntegerField(default=16)
    room = models.CharField(max_length=60, default="Online")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)

    class Meta:
        ordering = ["starts_at"]

    def __str__(self) -> str:
        return f"{self.code} {self.starts_at:%Y-%m-%d %H:%M}"

    def get_absolute_url(self) -> str:
        return reverse("lms:class-detail", args=[self.pk])


class Booking(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        CONFIRMED = "confirmed", "Confirmed"
        CANCELLED = "cancelled", "Cancelled"

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="bookings")
    session = models.ForeignKey(ClassSession, on_delete=models.CASCADE, related_name="bookings")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["student", "session"], name="lms_one_booking_per_seat"),
        ]

    def __str__(self) -> str:
        return f"{self.student} → {self.session}"


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REFUNDED = "refunded", "Refunded"

    reference = models.CharField(max_length=40, unique=True)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="payments")
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="payments")
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    method = models.CharField(max_length=20, default="card")
    card_last4 = models.CharField(max_length=4, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency} ({self.status})"


class TeacherOnboarding(models.Model):
    """A teacher's application, filled in over several pages."""

    class Stage(models.TextChoices):
        PROFILE = "profile", "Profile"
        QUALIFICATIONS = "qualifications", "Qualifications"
        AVAILABILITY = "availability", "Availability"
        AGREEMENT = "agreement", "Agreement"
        SUBMITTED = "submitted", "Submitted for review"
        APPROVED = "approved", "Approved"

    name = models.CharField(max_length=120)
    email = models.EmailField()
    subject = models.CharField(max_length=80)
    qualifications = models.TextField(blank=True)
    years_experience = models.PositiveIntegerField(default=0)
    weekly_hours = models.PositiveIntegerField(default=0)
    agreed_to_terms = models.BooleanField(default=False)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.PROFILE)
    teacher = models.OneToOneField(Teacher, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="onboarding")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.stage})"


class Report(models.Model):
    """A report a staff member or teacher generated, kept for the history list."""

    class Kind(models.TextChoices):
        REVENUE = "revenue", "Revenue by course"
        ATTENDANCE = "attendance", "Attendance by teacher"
        ENROLMENT = "enrolment", "Enrolment by subject"
        LEAGUE = "league", "Teacher league table by month"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    parameters = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="lms_reports")
    row_count = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"
