"""The Python API: start a journey, mark its steps, end it.

State lives in the ``UserJourney`` row, so a journey can start in one request
(or process) and go on in another. Each call is one short transaction on one
row: ``SELECT ... FOR UPDATE`` then ``UPDATE`` (PostgreSQL serializes
concurrent steps on the row lock, so none is lost). When the journey ends, and
for every step, a measurement goes into the capture buffer for the rollups.

What raises and what does not:

* Programmer errors raise a :class:`JourneyError`: an unknown type
  (:class:`UnknownJourneyType`), a step that is not in the type's list
  (:class:`UnknownStep`), a malformed journey id or metadata
  (:class:`InvalidJourneyInput`).
* Everything else is logged (rate-limited) and swallowed, never raised into
  the host's request: database failures, an id that does not exist, a step
  after the journey ended. ``step``/``complete``/``fail``/``abandon`` return
  True when the event was recorded (or was already, for an idempotent end)
  and False when it was rejected or could not be written.

Inside a host transaction (``ATOMIC_REQUESTS``) the write is a savepoint: a
failure here never breaks the host's transaction; the row commits or rolls
back with it, while the rollup measurement is already in the buffer.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, router, transaction
from django.utils import timezone

from perfmonitor.capture import buffer
from perfmonitor.capture.buffer import RateLimitedLog
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.capture.records import Measurement
from perfmonitor.ids import uuid7
from perfmonitor.journeys.definitions import (
    JourneyDefinition,
    JourneyError,
    get_definition,
    journey_types,
)
from perfmonitor.models import UserJourney
from perfmonitor.models.journeys import JourneyStatus

logger = logging.getLogger("perfmonitor.journeys")
_log = RateLimitedLog()

JOURNEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_STEPS = 200  # per journey: a looping page cannot grow a row without bound
MAX_METADATA_BYTES = 4096
MAX_REASON_CHARS = 500
ENDED = (JourneyStatus.COMPLETED, JourneyStatus.FAILED, JourneyStatus.ABANDONED)


class InvalidJourneyInput(JourneyError):
    """A malformed journey id, metadata that is not a small JSON object, and the like."""


@dataclass
class Outcome:
    """What one call did: ``error`` is None when accepted."""

    error: str | None = None
    measurements: list[Measurement] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


# -- helpers --------------------------------------------------------------------------------

def new_journey_id() -> str:
    return uuid7().hex


def check_journey_id(journey_id: Any) -> str:
    if isinstance(journey_id, uuid.UUID):
        journey_id = journey_id.hex
    if not isinstance(journey_id, str) or not JOURNEY_ID_RE.match(journey_id):
        raise InvalidJourneyInput(
            f"Journey id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-', "
            f"not {journey_id!r}.")
    return journey_id


def check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidJourneyInput(
            f"Journey metadata must be a dict, not {type(metadata).__name__}.")
    try:
        size = len(json.dumps(metadata, default=str))
    except (TypeError, ValueError) as exc:
        raise InvalidJourneyInput(f"Journey metadata must be JSON-serializable: {exc}.") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidJourneyInput(
            f"Journey metadata is {size} bytes once serialized; the limit is {MAX_METADATA_BYTES}.")
    return json.loads(json.dumps(metadata, default=str))


def user_id_of(user: Any) -> str:
    """The host user's pk as text (int or UUID pks); '' for anonymous or None."""
    if user is None:
        return ""
    if hasattr(user, "pk"):
        return "" if user.pk is None else str(user.pk)[:64]
    return str(user)[:64]


def ms_between(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() * 1000.0, 3)


def _measure(kind: str, journey_type: str, dimension: str, value: float, at: datetime,
             error: bool = False) -> Measurement:
    return Measurement(kind=kind, name=journey_type, dimension=dimension, value=max(value, 0.0),
                       ts=at.timestamp(), error=error)


def _push(outcome: Outcome) -> None:
    for measurement in outcome.measurements:
        buffer.push(measurement)


# -- transitions on a locked row -------------------------------------------------------------

def _locked(journey_id: str) -> UserJourney | None:
    return UserJourney.objects.select_for_update().filter(journey_id=journey_id).first()


def _definition(row: UserJourney) -> JourneyDefinition | None:
    """The row's type, or None when it was removed from settings since the journey began."""
    return journey_types().get(row.journey_type)


def _run(journey_id: str, change: Callable[[UserJourney], Outcome]) -> Outcome:
    """Lock the row, apply ``change``, save. JourneyError propagates; DB errors become Outcomes."""
    alias = router.db_for_write(UserJourney)
    try:
        with capture_suppressed(), transaction.atomic(using=alias):
            row = _locked(journey_id)
            if row is None:
                return Outcome(f"unknown journey {journey_id!r}")
            outcome = change(row)
    except JourneyError:
        raise
    except Exception as exc:  # a monitor failure never breaks the host's request
        _log.error("perfmonitor: journey %s could not be written: %r", journey_id, exc)
        return Outcome(f"journey could not be recorded ({type(exc).__name__})")
    _push(outcome)
    return outcome


def _save(row: UserJourney, *fields: str) -> None:
    row.save(update_fields=[*fields, "updated_at"])


def apply_step(row: UserJourney, definition: JourneyDefinition, name: str,
               metadata: dict[str, Any], at: datetime, client_ts: float | None = None) -> Outcome:
    """Append one step to a locked row: duration since the previous event, order flags."""
    index = definition.step_index(name)
    if row.status != JourneyStatus.IN_PROGRESS:
        return Outcome(f"journey {row.journey_id} is already {row.status}; step {name!r} rejected")
    steps = list(row.steps or [])
    if len(steps) >= MAX_STEPS:
        return Outcome(f"journey {row.journey_id} already has {MAX_STEPS} steps")
    previous_at = datetime.fromisoformat(steps[-1]["at"]) if steps else row.start_time
    at = max(at, previous_at)  # never a negative duration, whatever the clocks say
    furthest = max((s.get("index", -1) for s in steps), default=-1)
    entry: dict[str, Any] = {
        "name": name, "index": index, "started_at": previous_at.isoformat(),
        "at": at.isoformat(), "duration_ms": ms_between(previous_at, at),
        "out_of_order": index != furthest + 1,
    }
    if any(s.get("name") == name for s in steps):
        entry["repeat"] = True
    if metadata:
        entry["metadata"] = metadata
    if client_ts is not None:
        entry["client_ts"] = client_ts
    steps.append(entry)
    row.steps = steps
    _save(row, "steps")
    return Outcome(measurements=[
        _measure("journey_step", row.journey_type, name, entry["duration_ms"], at)])


def apply_end(row: UserJourney, status: str, at: datetime, reason: str = "",
              failed_step: str | None = None, note: dict[str, Any] | None = None) -> Outcome:
    """End a locked row. The same end twice is a no-op; a different end is rejected."""
    if row.status == status:
        return Outcome()
    if row.status != JourneyStatus.IN_PROGRESS:
        return Outcome(f"journey {row.journey_id} is already {row.status}; cannot mark it {status}")
    end = max(at, row.start_time)
    row.status = status
    row.end_time = end
    row.duration = round(ms_between(row.start_time, end))
    row.completed = status == JourneyStatus.COMPLETED
    row.abandoned = status == JourneyStatus.ABANDONED
    row.abandonment_reason = reason[:MAX_REASON_CHARS]
    fields = ["status", "end_time", "duration", "completed", "abandoned", "abandonment_reason"]
    if failed_step is not None:
        note = {**(note or {}), "failed_step": failed_step}
    if note:
        row.metadata = {**(row.metadata or {}), **note}
        fields.append("metadata")
    _save(row, *fields)
    return Outcome(measurements=[
        _measure("journey", row.journey_type, status, float(row.duration), end,
                 error=status == JourneyStatus.FAILED)])


# -- public API ------------------------------------------------------------------------------

def create(journey_type: str, *, journey_id: str, user_id: str = "", session_id: str = "",
           metadata: dict[str, Any] | None = None, at: datetime | None = None) -> Outcome:
    """Insert the row; used by :func:`start` and by the browser handler."""
    definition = get_definition(journey_type)
    at = at or timezone.now()
    alias = router.db_for_write(UserJourney)
    try:
        with capture_suppressed(), transaction.atomic(using=alias):
            UserJourney.objects.create(
                journey_id=journey_id, journey_type=definition.key, user_id=user_id[:64],
                session_id=session_id[:255], start_time=at, metadata=metadata or {},
                steps=[], status=JourneyStatus.IN_PROGRESS)
    except IntegrityError:
        return Outcome(f"journey id {journey_id!r} is already in use")
    except Exception as exc:
        _log.error("perfmonitor: journey %s could not be started: %r", journey_id, exc)
        return Outcome(f"journey could not be recorded ({type(exc).__name__})")
    outcome = Outcome(measurements=[_measure("journey", definition.key, "started", 0.0, at)])
    _push(outcome)
    return outcome


def start(journey_type: str, user: Any = None, session: str | None = None,
          metadata: dict[str, Any] | None = None, *, journey_id: str | None = None,
          at: datetime | None = None) -> str:
    """Start a journey and return its id (also when the row could not be written)."""
    get_definition(journey_type)
    journey_id = check_journey_id(journey_id) if journey_id is not None else new_journey_id()
    outcome = create(journey_type, journey_id=journey_id, user_id=user_id_of(user),
                     session_id=str(session or ""), metadata=check_metadata(metadata), at=at)
    if not outcome.ok:
        logger.debug("journey start not recorded: %s", outcome.error)
    return journey_id


def _rejected(outcome: Outcome) -> bool:
    if outcome.ok:
        return True
    _log.error("perfmonitor: journey event rejected: %s", outcome.error)
    return False


def step(journey_id: str, name: str, metadata: dict[str, Any] | None = None, *,
         at: datetime | None = None) -> bool:
    """Mark a step reached. Out-of-order steps are recorded and flagged."""
    journey_id = check_journey_id(journey_id)
    metadata = check_metadata(metadata)
    moment = at or timezone.now()

    def change(row: UserJourney) -> Outcome:
        definition = _definition(row)
        if definition is None:
            return Outcome(f"journey type {row.journey_type!r} is no longer defined")
        return apply_step(row, definition, name, metadata, moment)

    return _rejected(_run(journey_id, change))


def complete(journey_id: str, *, at: datetime | None = None) -> bool:
    """Mark the journey completed; completing twice is a no-op."""
    journey_id = check_journey_id(journey_id)
    moment = at or timezone.now()
    return _rejected(_run(journey_id, lambda row: apply_end(row, JourneyStatus.COMPLETED, moment)))


def fail(journey_id: str, step: str, reason: str, *, at: datetime | None = None) -> bool:
    """Mark the journey failed at ``step`` (a step of its type) for ``reason``."""
    journey_id = check_journey_id(journey_id)
    moment = at or timezone.now()

    def change(row: UserJourney) -> Outcome:
        definition = _definition(row)
        if definition is not None:
            definition.step_index(step)
        return apply_end(row, JourneyStatus.FAILED, moment, str(reason), failed_step=step)

    return _rejected(_run(journey_id, change))


def abandon(journey_id: str, reason: str, *, at: datetime | None = None) -> bool:
    """Mark the journey abandoned (the user gave up) for ``reason``."""
    journey_id = check_journey_id(journey_id)
    moment = at or timezone.now()
    return _rejected(_run(journey_id, lambda row: apply_end(
        row, JourneyStatus.ABANDONED, moment, str(reason))))
