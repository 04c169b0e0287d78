"""Query helpers shared by the views: the efficient versions, joins and annotations."""

from __future__ import annotations

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from demo_project.lms.models import Booking, ClassSession, Course

ACTIVE_BOOKING = ~Q(bookings__status=Booking.Status.CANCELLED)


def upcoming_sessions() -> QuerySet[ClassSession]:
    """Scheduled future classes with course and teacher joined and seats taken counted."""
    return (ClassSession.objects
            .filter(starts_at__gte=timezone.now(), status=ClassSession.Status.SCHEDULED)
            .select_related("course", "teacher")
            .annotate(seats_taken=Count("bookings", filter=ACTIVE_BOOKING))
            .order_by("starts_at"))


def course_catalog() -> QuerySet[Course]:
    """Published courses with their teacher and the count and date of upcoming classes."""
    upcoming = Q(sessions__starts_at__gte=timezone.now(),
                 sessions__status=ClassSession.Status.SCHEDULED)
    return (Course.objects.filter(published=True)
            .select_related("teacher")
            .annotate(upcoming_count=Count("sessions", filter=upcoming),
                      next_class=Min("sessions__starts_at", filter=upcoming))
            .order_by("title"))


def seats_taken(session: ClassSession) -> int:
    return session.bookings.exclude(status=Booking.Status.CANCELLED).count()
