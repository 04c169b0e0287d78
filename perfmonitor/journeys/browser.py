"""Journey events from the browser client, as accepted by the collect API.

One validated ``journey`` item of a beacon batch::

    {"type": "journey", "action": "start" | "step" | "complete" | "fail" | "abandon",
     "journey_id": "...", "journey_type": "login", "step": "...", "reason": "...",
     "metadata": {...}, "ts": <client epoch ms>}

:func:`handle_browser_event` returns None when the event is accepted, or a
short error that the collect API reports as that item's rejection. It never
raises.

Timing. Beacons are batched, so receipt times say little about when a step
happened. A browser-started journey keeps the client's clock reading at its
start (``client_start_ts`` in its metadata) and places every later event at
``server start + (client ts - client start)``: durations come from one clock
(the page's), the row's times from the server's, shifted by at most the
batching delay of the start event. An event placed before the start is put at
the start; one placed more than a minute after its own receipt (a client
clock gone wrong) falls back to the receipt time. Events for a journey
started on the server use the receipt time.

A browser event may only touch a journey of the same monitoring session.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from perfmonitor.capture.context import capture_suppressed
from perfmonitor.journeys import tracker
from perfmonitor.journeys.definitions import JourneyError, get_definition, journey_types
from perfmonitor.models import UserJourney
from perfmonitor.models.journeys import JourneyStatus

ACTIONS = ("start", "step", "complete", "fail", "abandon")
SOURCE_BROWSER = "browser"
FUTURE_SLACK = timedelta(minutes=1)


def _client_ts(event: dict[str, Any]) -> float | None:
    value = event.get("ts")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def _event_time(row: UserJourney, client_ts: float | None, received: datetime) -> datetime:
    anchor = (row.metadata or {}).get("client_start_ts")
    if client_ts is None or not isinstance(anchor, (int, float)) or anchor <= 0:
        return received
    placed = row.start_time + timedelta(milliseconds=client_ts - anchor)
    if placed < row.start_time:
        return row.start_time
    if placed > received + FUTURE_SLACK:
        return received
    return placed


def _text(event: dict[str, Any], key: str, limit: int) -> str | None:
    value = event.get(key)
    if isinstance(value, str) and 0 < len(value) <= limit:
        return value
    return None


def _start(event: dict[str, Any], journey_id: str, session_id: str, user_id: str,
           received: datetime) -> str | None:
    journey_type = _text(event, "journey_type", 64)
    if journey_type is None:
        return "journey_type is required to start a journey"
    if journey_type not in journey_types():
        return f"unknown journey type {journey_type!r}"
    try:
        metadata = tracker.check_metadata(event.get("metadata"))
    except JourneyError as exc:
        return str(exc)
    metadata.setdefault("source", SOURCE_BROWSER)
    client_ts = _client_ts(event)
    if client_ts is not None:
        metadata["client_start_ts"] = client_ts
    with capture_suppressed():
        existing = UserJourney.objects.filter(journey_id=journey_id).values_list(
            "journey_type", "session_id").first()
    if existing is not None:
        # A retried beacon re-sends its start: the same journey again is fine.
        if existing == (journey_type, session_id):
            return None
        return f"journey id {journey_id!r} is already in use"
    outcome = tracker.create(journey_type, journey_id=journey_id, user_id=user_id,
                             session_id=session_id, metadata=metadata, at=received)
    return outcome.error


def _continue(event: dict[str, Any], action: str, journey_id: str, session_id: str,
              received: datetime) -> str | None:
    step_name = _text(event, "step", 128)
    reason = event.get("reason") if isinstance(event.get("reason"), str) else ""
    try:
        metadata = tracker.check_metadata(event.get("metadata"))
    except JourneyError as exc:
        return str(exc)
    if action == "step" and step_name is None:
        return "step is required"
    client_ts = _client_ts(event)

    def change(row: UserJourney) -> tracker.Outcome:
        if row.session_id and session_id and row.session_id != session_id:
            return tracker.Outcome("journey belongs to another session")
        definition = journey_types().get(row.journey_type)
        if definition is None:
            return tracker.Outcome(f"journey type {row.journey_type!r} is no longer defined")
        if step_name is not None and not definition.has_step(step_name):
            return tracker.Outcome(f"{step_name!r} is not a step of the "
                                   f"{row.journey_type!r} journey")
        at = _event_time(row, client_ts, received)
        if action == "step":
            assert step_name is not None
            return tracker.apply_step(row, definition, step_name, metadata, at, client_ts)
        note = _end_note(row, metadata)
        if action == "complete":
            return tracker.apply_end(row, JourneyStatus.COMPLETED, at, note=note)
        if action == "fail":
            failed_at = step_name or _last_step(row) or definition.steps[0].name
            return tracker.apply_end(row, JourneyStatus.FAILED, at, reason or "failed",
                                     failed_step=failed_at, note=note)
        return tracker.apply_end(row, JourneyStatus.ABANDONED, at, reason or "abandoned",
                                 note=note)

    return tracker._run(journey_id, change).error


def _end_note(row: UserJourney, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The end event's metadata, merged into the journey's; keys already there are kept
    (the start's metadata, ``source``, ``client_start_ts``)."""
    kept = row.metadata or {}
    note = {key: value for key, value in metadata.items() if key not in kept}
    return note or None


def _last_step(row: UserJourney) -> str | None:
    steps = row.steps or []
    return steps[-1].get("name") if steps else None


def handle_browser_event(event: dict[str, Any], session_id: str, user_id: str) -> str | None:
    """Apply one browser journey event; None when accepted, else the reason it was rejected."""
    try:
        if not isinstance(event, dict):
            return "journey event must be an object"
        action = event.get("action")
        if action not in ACTIONS:
            return f"action must be one of {', '.join(ACTIONS)}"
        journey_id = event.get("journey_id")
        if not isinstance(journey_id, str) or not tracker.JOURNEY_ID_RE.match(journey_id):
            return "journey_id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"
        received = timezone.now()
        session_id = str(session_id or "")[:255]
        if action == "start":
            return _start(event, journey_id, session_id, str(user_id or "")[:64], received)
        return _continue(event, action, journey_id, session_id, received)
    except JourneyError as exc:
        return str(exc)
    except Exception as exc:  # the collect API reports it per item; never a 500
        tracker._log.error("perfmonitor: browser journey event failed: %r", exc)
        return "journey event could not be recorded"


def known_step(journey_type: str, step: str) -> bool:
    """For the collect API's own validation, if it wants to reject early."""
    try:
        return get_definition(journey_type).has_step(step)
    except JourneyError:
        return False
