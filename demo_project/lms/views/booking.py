"""Booking a seat in a class and paying for it.

Journeys: ``class_booking`` runs from the class list to the confirmation page;
``payment_processing`` runs inside it, from the checkout page to the receipt.
"""

from __future__ import annotations

import random
import secrets
import time
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from demo_project.lms import journey_hooks as journeys
from demo_project.lms.forms import DECLINED_CARD, PaymentForm
from demo_project.lms.models import Booking, ClassSession, Payment, Student
from demo_project.lms.queries import seats_taken


def student_required(view: Any) -> Any:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        student = getattr(request.user, "student", None)
        if student is None:
            messages.info(request, "Only students can book classes.")
            return redirect("lms:dashboard")
        return view(request, student, *args, **kwargs)
    return wrapper


@require_POST
@student_required
def book_class(request: HttpRequest, student: Student, pk: int) -> HttpResponse:
    session = get_object_or_404(ClassSession.objects.select_related("course"), pk=pk,
                                starts_at__gte=timezone.now())
    journeys.ensure_started(request, journeys.CLASS_BOOKING, "booking_submitted",
                            {"course": session.course.slug})
    with transaction.atomic():
        # The row lock (PostgreSQL) keeps two students from taking the last seat.
        locked = ClassSession.objects.select_for_update().get(pk=session.pk)
        if seats_taken(locked) >= locked.capacity:
            journeys.fail(request, journeys.CLASS_BOOKING, "seat_reserved", "class_full")
            return render(request, "lms/class_full.html", {"session": session}, status=409)
        try:
            with transaction.atomic():
                booking, created = Booking.objects.get_or_create(
                    student=student, session=locked,
                    defaults={"status": Booking.Status.PENDING})
        except IntegrityError:  # a double click raced us
            booking, created = Booking.objects.get(student=student, session=locked), False
        if not created and booking.status == Booking.Status.CONFIRMED:
            messages.info(request, "You already have a seat in this class.")
            journeys.abandon(request, journeys.CLASS_BOOKING, "already_booked")
            return redirect("lms:dashboard")
        if booking.status == Booking.Status.CANCELLED:
            booking.status = Booking.Status.PENDING
            booking.save(update_fields=["status"])
    journeys.step(request, journeys.CLASS_BOOKING, "seat_reserved")
    return redirect("lms:checkout", pk=booking.pk)


def _own_booking(student: Student, pk: int) -> Booking:
    return get_object_or_404(
        Booking.objects.select_related("session__course", "session__teacher"),
        pk=pk, student=student)


@student_required
def checkout(request: HttpRequest, student: Student, pk: int) -> HttpResponse:
    booking = _own_booking(student, pk)
    if booking.status == Booking.Status.CONFIRMED:
        payment = booking.payments.filter(status=Payment.Status.SUCCEEDED).first()
        return redirect("lms:receipt", reference=payment.reference) if payment \
            else redirect("lms:dashboard")
    if booking.status == Booking.Status.CANCELLED:
        messages.info(request, "This booking was cancelled.")
        return redirect("lms:class-detail", pk=booking.session_id)
    amount = booking.session.course.price
    if request.method != "POST":
        journeys.step(request, journeys.CLASS_BOOKING, "checkout_started")
        journeys.ensure_started(request, journeys.PAYMENT_PROCESSING, "checkout_view",
                                {"amount": str(amount)})
        return render(request, "lms/checkout.html",
                      {"booking": booking, "amount": amount, "form": PaymentForm()})

    if not journeys.current(request, journeys.PAYMENT_PROCESSING):
        journeys.start(request, journeys.PAYMENT_PROCESSING, "checkout_view",
                       {"amount": str(amount)})
    journeys.step(request, journeys.PAYMENT_PROCESSING, "payment_details_submitted")
    form = PaymentForm(request.POST)
    if not form.is_valid():
        return render(request, "lms/checkout.html",
                      {"booking": booking, "amount": amount, "form": form})
    card = form.cleaned_data["card_number"]
    payment = Payment.objects.create(
        reference=f"PAY-{secrets.token_hex(6).upper()}", booking=booking, student=student,
        amount=amount, card_last4=card[-4:])
    if not _authorize_with_provider(card):
        payment.status = Payment.Status.FAILED
        payment.failure_reason = "card_declined"
        payment.save(update_fields=["status", "failure_reason"])
        journeys.fail(request, journeys.PAYMENT_PROCESSING, "payment_authorized",
                      "card_declined")
        form.add_error(None, "Your card was declined. Try another card.")
        return render(request, "lms/checkout.html",
                      {"booking": booking, "amount": amount, "form": form}, status=402)
    journeys.step(request, journeys.PAYMENT_PROCESSING, "payment_authorized")
    with transaction.atomic():
        payment.status = Payment.Status.SUCCEEDED
        payment.paid_at = timezone.now()
        payment.save(update_fields=["status", "paid_at"])
        booking.status = Booking.Status.CONFIRMED
        booking.save(update_fields=["status"])
    journeys.step(request, journeys.PAYMENT_PROCESSING, "payment_captured")
    journeys.step(request, journeys.CLASS_BOOKING, "payment_confirmed")
    return redirect("lms:receipt", reference=payment.reference)


def _authorize_with_provider(card_number: str) -> bool:
    """Stands in for the payment provider's API call and its network latency."""
    time.sleep(random.uniform(0.05, 0.25))
    return card_number != DECLINED_CARD


@require_POST
@student_required
def cancel_booking(request: HttpRequest, student: Student, pk: int) -> HttpResponse:
    booking = _own_booking(student, pk)
    with transaction.atomic():
        booking.status = Booking.Status.CANCELLED
        booking.save(update_fields=["status"])
        booking.payments.filter(status=Payment.Status.SUCCEEDED).update(
            status=Payment.Status.REFUNDED)
    journeys.abandon(request, journeys.PAYMENT_PROCESSING, "user_cancelled")
    journeys.abandon(request, journeys.CLASS_BOOKING, "user_cancelled")
    messages.success(request, f"Your booking for {booking.session.course} was cancelled.")
    return redirect("lms:dashboard")


@student_required
def receipt(request: HttpRequest, student: Student, reference: str) -> HttpResponse:
    payment = get_object_or_404(
        Payment.objects.select_related("booking__session__course", "booking__session__teacher"),
        reference=reference, student=student, status=Payment.Status.SUCCEEDED)
    journeys.complete(request, journeys.PAYMENT_PROCESSING, "receipt_view")
    journeys.complete(request, journeys.CLASS_BOOKING, "confirmation_view")
    return render(request, "lms/receipt.html", {"payment": payment, "booking": payment.booking})
