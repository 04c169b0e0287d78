"""Reports for teachers and staff: three aggregate reports, a deliberately slow league
table, and a streaming CSV export of bookings."""

from __future__ import annotations

import csv
import random
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.functions import Cast, TruncMonth
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from demo_project.lms import journey_hooks as journeys
from demo_project.lms.forms import ReportForm
from demo_project.lms.models import Booking, Course, Payment, Report, Teacher

EXPORT_MAX_ROWS = 20_000
EXPORT_BATCH = 500
PAID = Q(status=Payment.Status.SUCCEEDED)


def staff_or_teacher(view: Any) -> Any:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (request.user.is_staff or hasattr(request.user, "teacher")):
            return HttpResponseForbidden("Reports are for teachers and staff.")
        return view(request, *args, **kwargs)
    return wrapper


def _revenue(since: Any) -> QuerySet:
    window = Q(sessions__bookings__payments__created_at__gte=since)
    return (Course.objects.select_related("teacher")
            .annotate(
                revenue=Sum("sessions__bookings__payments__amount",
                            filter=window & Q(sessions__bookings__payments__status="succeeded")),
                payments=Count("sessions__bookings__payments", filter=window))
            .filter(payments__gt=0).order_by("-revenue"))


def _attendance(since: Any) -> QuerySet:
    window = Q(sessions__starts_at__gte=since, sessions__starts_at__lt=timezone.now())
    return (Teacher.objects
            .annotate(classes=Count("sessions", filter=window, distinct=True),
                      seats=Sum("sessions__capacity", filter=window),
                      attended=Count("sessions__bookings", filter=window & Q(
                          sessions__bookings__status=Booking.Status.CONFIRMED)))
            .filter(classes__gt=0).order_by("-attended"))


def _enrolment(since: Any) -> QuerySet:
    return (Booking.objects.filter(created_at__gte=since)
            .values(subject=F("session__course__subject"))
            .annotate(bookings=Count("id"), students=Count("student", distinct=True),
                      confirmed=Count("id", filter=Q(status=Booking.Status.CONFIRMED)))
            .order_by("-bookings"))


BUILDERS = {Report.Kind.REVENUE: _revenue, Report.Kind.ATTENDANCE: _attendance,
            Report.Kind.ENROLMENT: _enrolment}


@staff_or_teacher
def report_page(request: HttpRequest) -> HttpResponse:
    history = Report.objects.select_related("requested_by")[:8]
    if "kind" not in request.GET:
        return render(request, "lms/reports.html", {"form": ReportForm(), "history": history})
    started = time.perf_counter()
    with journeys.within_request(request, journeys.REPORT_GENERATION,
                                 {"kind": request.GET.get("kind", "")}) as journey:
        form = ReportForm(request.GET)
        if not form.is_valid():
            journey.fail("filters_validated", "invalid_filters")
            return render(request, "lms/reports.html",
                          {"form": form, "history": history}, status=400)
        journey.step("filters_validated")
        params = form.as_parameters()
        since = timezone.now() - timedelta(days=params["days"])
        rows = list(BUILDERS[params["kind"]](since))
        journey.step("data_aggregated", {"rows": len(rows)})
        totals = _totals(params["kind"], rows)
        journey.step("totals_computed")
        Report.objects.create(kind=params["kind"], parameters=params, requested_by=request.user,
                              row_count=len(rows),
                              duration_ms=int((time.perf_counter() - started) * 1000))
        response = render(request, "lms/reports.html", {
            "form": form, "history": history, "kind": params["kind"], "rows": rows,
            "totals": totals, "params": params,
        })
        journey.step("report_rendered")
    return response


def _totals(kind: str, rows: list[Any]) -> dict[str, Any]:
    if kind == Report.Kind.REVENUE:
        return {"revenue": sum((r.revenue or 0) for r in rows),
                "payments": sum(r.payments for r in rows)}
    if kind == Report.Kind.ATTENDANCE:
        seats = sum(r.seats or 0 for r in rows)
        attended = sum(r.attended for r in rows)
        return {"classes": sum(r.classes for r in rows), "attended": attended,
                "fill_rate": (100.0 * attended / seats) if seats else 0.0}
    return {"bookings": sum(r["bookings"] for r in rows)}


@staff_or_teacher
def slow_report(request: HttpRequest) -> HttpResponse:
    """Deliberately slow: a monthly league table aggregated over every booking and payment
    since the school opened, with no caching, then a wait on a (simulated) warehouse."""
    started = time.perf_counter()
    with journeys.within_request(request, journeys.REPORT_GENERATION,
                                 {"kind": Report.Kind.LEAGUE}) as journey:
        journey.step("filters_validated")
        rows = list(
            Booking.objects
            .annotate(month=TruncMonth("created_at"))
            .values("month", teacher_name=F("session__teacher__name"),
                    subject=F("session__course__subject"))
            .annotate(bookings=Count("id"),
                      students=Count("student", distinct=True),
                      revenue=Sum("payments__amount", filter=Q(payments__status="succeeded")),
                      failed=Count("payments", filter=Q(payments__status="failed")),
                      fill=Cast(Count("id"), FloatField()) / Cast(Sum("session__capacity"),
                                                                  FloatField()))
            .order_by("-month", "-revenue"))
        journey.step("data_aggregated", {"rows": len(rows)})
        time.sleep(random.uniform(0.3, 0.8))  # the warehouse round trip this page waits on
        totals = {"bookings": sum(r["bookings"] for r in rows),
                  "revenue": sum((r["revenue"] or 0) for r in rows)}
        journey.step("totals_computed")
        Report.objects.create(kind=Report.Kind.LEAGUE, parameters={"slow": True},
                              requested_by=request.user, row_count=len(rows),
                              duration_ms=int((time.perf_counter() - started) * 1000))
        response = render(request, "lms/slow_report.html",
                          {"rows": rows[:200], "row_count": len(rows), "totals": totals})
        journey.step("report_rendered")
    return response


class _Echo:
    """csv.writer wants a file; this one hands each line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


async def bookings_csv(request: HttpRequest) -> HttpResponse:
    """Stream every booking of the last N days as CSV, without holding them in memory."""
    user = await request.auser()
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not (user.is_staff or await Teacher.objects.filter(user_id=user.pk).aexists()):
        return HttpResponseForbidden("Exports are for teachers and staff.")
    try:
        days = max(1, min(int(request.GET.get("days", "90")), 3650))
    except ValueError:
        return HttpResponse("days must be a whole number", status=400,
                            content_type="text/plain")
    since = timezone.now() - timedelta(days=days)
    bookings = (Booking.objects.filter(created_at__gte=since).order_by("id")
                .values_list("id", "created_at", "status", "student__name", "session__code",
                             "session__course__title", "session__starts_at"))
    fetch = sync_to_async(lambda after: list(bookings.filter(id__gt=after)[:EXPORT_BATCH]))
    writer = csv.writer(_Echo())

    async def lines() -> AsyncIterator[str]:
        yield writer.writerow(["booking", "booked_at", "status", "student", "class", "course",
                               "starts_at"])
        # Keyset pagination: one bounded batch in memory at a time, each a cheap index scan.
        after, sent = 0, 0
        while sent < EXPORT_MAX_ROWS:
            batch = await fetch(after)
            for row in batch:
                yield writer.writerow([row[0], row[1].isoformat(), row[2], row[3], row[4],
                                       row[5], row[6].isoformat()])
            sent += len(batch)
            if len(batch) < EXPORT_BATCH:
                break
            after = batch[-1][0]

    return StreamingHttpResponse(
        lines(), content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="bookings-{days}d.csv"'})
