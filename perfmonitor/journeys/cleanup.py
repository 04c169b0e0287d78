"""Journeys nobody finished: mark them abandoned with reason ``timeout``.

Run every minute by the ``perfmonitor.cleanup_stuck_journeys`` task. A journey
is stuck when it is still in progress ``timeout_ms`` after it started (the
type's timeout; types no longer defined use ``JOURNEY_DEFAULT_TIMEOUT_MS``).
Each row is ended in its own short transaction under the row lock, exactly as
the tracker ends it, so a user who completes at the same moment wins or loses
cleanly and a second run finds nothing left to do.

The abandoned journey ends at its last activity (its last step, or its start):
that is when the user left, and its duration is the time they spent. Its
rollup is stamped with the time of the cleanup, so no closed bucket is
written to after the fact.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from perfmonitor.capture.context import capture_suppressed
from perfmonitor.conf import settings
from perfmonitor.journeys import tracker
from perfmonitor.journeys.definitions import journey_types
from perfmonitor.models import UserJourney
from perfmonitor.models.journeys import JourneyStatus

TIMEOUT_REASON = "timeout"
BATCH = 500


def _last_activity(row: UserJourney) -> datetime:
    steps = row.steps or []
    if steps:
        try:
            return max(datetime.fromisoformat(steps[-1]["at"]), row.start_time)
        except (KeyError, TypeError, ValueError):
            pass
    return row.start_time


def _time_out(row: UserJourney, now: datetime) -> tracker.Outcome:
    if row.status != JourneyStatus.IN_PROGRESS:
        return tracker.Outcome()  # finished since we listed it: leave it alone
    outcome = tracker.apply_end(row, JourneyStatus.ABANDONED, _last_activity(row),
                                TIMEOUT_REASON, note={"timed_out_at": now.isoformat()})
    for measurement in outcome.measurements:
        measurement.ts = now.timestamp()
    return outcome


def _stuck_ids(selector: Q, cutoff: datetime, after: Any, limit: int) -> list[tuple[Any, str]]:
    query = UserJourney.objects.filter(selector, status=JourneyStatus.IN_PROGRESS,
                                       start_time__lt=cutoff)
    if after is not None:
        query = query.filter(pk__gt=after)
    with capture_suppressed():
        return list(query.order_by("pk").values_list("pk", "journey_id")[:limit])


def _abandon_stuck(selector: Q, cutoff: datetime, now: datetime, budget: int) -> int:
    done = 0
    after = None
    while done < budget:
        batch = _stuck_ids(selector, cutoff, after, min(BATCH, budget - done))
        if not batch:
            break
        for pk, journey_id in batch:
            after = pk
            outcome = tracker._run(journey_id, lambda row: _time_out(row, now))
            done += int(outcome.ok and bool(outcome.measurements))
    return done


def cleanup_stuck_journeys(now: datetime | None = None) -> dict[str, int]:
    """Abandon in-progress journeys past their type's timeout; returns counts per type."""
    now = now or timezone.now()
    budget = settings.JOURNEY_CLEANUP_MAX_ROWS
    counts: dict[str, int] = {}
    definitions = journey_types()
    for key, definition in definitions.items():
        cutoff = now - timedelta(milliseconds=definition.timeout_ms)
        n = _abandon_stuck(Q(journey_type=key), cutoff, now, budget)
        budget -= n
        if n:
            counts[key] = n
    cutoff = now - timedelta(milliseconds=settings.JOURNEY_DEFAULT_TIMEOUT_MS)
    n = _abandon_stuck(~Q(journey_type__in=list(definitions)), cutoff, now, budget)
    if n:
        counts["<undefined types>"] = n
    return counts
