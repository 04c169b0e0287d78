"""The one place where the demo LMS reports its user journeys to perfmonitor.

Views call these helpers with the request; the helpers keep the id of each
running journey in the Django session (a multi-page flow spans requests) and
forward to ``perfmonitor.journeys``. Monitoring must never break the site:
every call is guarded, and when ``perfmonitor.journeys`` is not importable the
helpers do nothing.

Step names live in ``STEPS`` and nowhere else, in the order a user meets them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.http import HttpRequest

logger = logging.getLogger(__name__)

STUDENT_REGISTRATION = "student_registration"
CLASS_BOOKING = "class_booking"
LOGIN = "login"
PAYMENT_PROCESSING = "payment_processing"
TEACHER_ONBOARDING = "teacher_onboarding"
DASHBOARD_LOADING = "dashboard_loading"
REPORT_GENERATION = "report_generation"

STEPS: dict[str, tuple[str, ...]] = {
    STUDENT_REGISTRATION: (
        "form_view", "form_submitted", "account_created", "profile_view",
        "profile_completed", "welcome_view", "first_dashboard",
    ),
    CLASS_BOOKING: (
        "class_list_view", "class_detail_view", "booking_submitted", "seat_reserved",
        "checkout_started", "payment_confirmed", "confirmation_view",
    ),
    LOGIN: ("form_view", "credentials_submitted", "authenticated", "dashboard_loaded"),
    PAYMENT_PROCESSING: (
        "checkout_view", "payment_details_submitted", "payment_authorized",
        "payment_captured", "receipt_view",
    ),
    TEACHER_ONBOARDING: (
        "application_started", "profile_submitted", "qualifications_submitted",
        "availability_submitted", "agreement_signed", "application_reviewed",
        "onboarding_complete",
    ),
    DASHBOARD_LOADING: ("request_received", "bookings_loaded", "stats_computed", "rendered"),
    REPORT_GENERATION: (
        "report_requested", "filters_validated", "data_aggregated", "totals_computed",
        "report_rendered",
    ),
}

SESSION_KEY = "lms_journeys"
MONITOR_SESSION_KEY = "lms_monitor_session"

_api: list[Any] = []  # [module or None], resolved on first use


def _journeys() -> Any:
    if not _api:
        try:
            from perfmonitor import journeys
        except Exception:  # not installed yet, or broken: the site goes on without it
            journeys = None
        if journeys is not None and not hasattr(journeys, "start"):
            journeys = None
        _api.append(journeys)
    return _api[0]


def _call(name: str, *args: Any, **kwargs: Any) -> Any:
    api = _journeys()
    if api is None:
        return None
    try:
        return getattr(api, name)(*args, **kwargs)
    except Exception as exc:
        logger.warning("journey %s(%s) failed: %r", name, args[:2], exc)
        return None


def _check_step(journey_type: str, step: str) -> None:
    if step not in STEPS[journey_type]:
        raise ValueError(f"{step!r} is not a step of the {journey_type!r} journey")


def monitor_session_id(request: HttpRequest) -> str:
    """A random id for this visitor's session; never the session cookie itself."""
    value = request.session.get(MONITOR_SESSION_KEY)
    if not value:
        value = request.session[MONITOR_SESSION_KEY] = uuid.uuid4().hex
    return value


def _running(request: HttpRequest) -> dict[str, str]:
    return request.session.get(SESSION_KEY, {})


def current(request: HttpRequest, journey_type: str) -> str | None:
    """Id of the unfinished journey of this type in the visitor's session."""
    return _running(request).get(journey_type)


def _remember(request: HttpRequest, journey_type: str, journey_id: str | None) -> None:
    running = dict(_running(request))
    if journey_id is None:
        running.pop(journey_type, None)
    else:
        running[journey_type] = journey_id
    request.session[SESSION_KEY] = running


def start(request: HttpRequest, journey_type: str, first_step: str | None = None,
          metadata: dict[str, Any] | None = None) -> str | None:
    """Start a journey (abandoning an unfinished one of the same type) and mark its first step."""
    previous = current(request, journey_type)
    if previous:
        _call("abandon", previous, "restarted")
    user = request.user if getattr(request, "user", None) and request.user.is_authenticated \
        else None
    journey_id = _call("start", journey_type, user=user, session=monitor_session_id(request),
                       metadata=metadata or {})
    _remember(request, journey_type, str(journey_id) if journey_id else None)
    if first_step:
        step(request, journey_type, first_step)
    return journey_id


def ensure_started(request: HttpRequest, journey_type: str, first_step: str,
                   metadata: dict[str, Any] | None = None) -> str | None:
    """Continue the running journey of this type, or start one at ``first_step``."""
    journey_id = current(request, journey_type)
    if journey_id and step(request, journey_type, first_step):
        return journey_id
    return start(request, journey_type, first_step, metadata)


def step(request: HttpRequest, journey_type: str, name: str,
         metadata: dict[str, Any] | None = None) -> bool:
    """Mark a step of the running journey; False when there is none to mark."""
    _check_step(journey_type, name)
    journey_id = current(request, journey_type)
    if not journey_id:
        return False
    if _call("step", journey_id, name, metadata=metadata) is False:
        # Ended meanwhile (e.g. abandoned by the timeout cleanup): forget it.
        _remember(request, journey_type, None)
        return False
    return True


def complete(request: HttpRequest, journey_type: str, last_step: str | None = None) -> None:
    if last_step:
        step(request, journey_type, last_step)
    journey_id = current(request, journey_type)
    if journey_id:
        _call("complete", journey_id)
        _remember(request, journey_type, None)


def fail(request: HttpRequest, journey_type: str, at_step: str, reason: str) -> None:
    _check_step(journey_type, at_step)
    journey_id = current(request, journey_type)
    if journey_id:
        _call("fail", journey_id, at_step, reason)
        _remember(request, journey_type, None)


def abandon(request: HttpRequest, journey_type: str, reason: str) -> None:
    journey_id = current(request, journey_type)
    if journey_id:
        _call("abandon", journey_id, reason)
        _remember(request, journey_type, None)


class _SingleRequest:
    """A journey held in a local variable: nothing to keep in the session."""

    def __init__(self, journey_type: str, journey_id: str | None) -> None:
        self.journey_type = journey_type
        self.journey_id = journey_id
        self.last_step = STEPS[journey_type][0]
        self.finished = False

    def fail(self, at_step: str, reason: str) -> None:
        _check_step(self.journey_type, at_step)
        self.finished = True
        if self.journey_id:
            _call("fail", self.journey_id, at_step, reason)

    def step(self, name: str, metadata: dict[str, Any] | None = None) -> None:
        _check_step(self.journey_type, name)
        self.last_step = name
        if self.journey_id:
            _call("step", self.journey_id, name, metadata=metadata)


@contextmanager
def within_request(request: HttpRequest, journey_type: str,
                   metadata: dict[str, Any] | None = None) -> Iterator[_SingleRequest]:
    """A journey that starts and ends inside one request (dashboard, report).

    Completes when the block exits normally; an exception fails it at the last
    step reached, then propagates.
    """
    user = request.user if request.user.is_authenticated else None
    journey_id = _call("start", journey_type, user=user, session=monitor_session_id(request),
                       metadata=metadata or {})
    tracker = _SingleRequest(journey_type, str(journey_id) if journey_id else None)
    tracker.step(tracker.last_step)
    try:
        yield tracker
    except Exception as exc:
        if not tracker.finished:
            tracker.fail(tracker.last_step, type(exc).__name__)
        raise
    if tracker.journey_id and not tracker.finished:
        _call("complete", tracker.journey_id)
