"""User journeys: named multi-step flows with time targets, tracked from Python or the browser.

    from perfmonitor import journeys

    journey_id = journeys.start("class_booking", user=request.user, metadata={"plan": "pro"})
    journeys.step(journey_id, "class_detail_view")
    journeys.complete(journey_id)

    with journeys.track("report_generation", user=request.user) as journey:
        journey.step("report_requested")

Programmer errors (unknown type or step, malformed id or metadata) raise a
:class:`JourneyError`; database failures and state conflicts (a step after the
journey ended, an unknown id) are logged and reported by a False return, never
raised into the host's request. See ``tracker`` for the details.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async

from perfmonitor.journeys.analysis import analyze_journey
from perfmonitor.journeys.browser import handle_browser_event
from perfmonitor.journeys.cleanup import cleanup_stuck_journeys
from perfmonitor.journeys.definitions import (
    JourneyDefinition,
    JourneyError,
    StepDefinition,
    UnknownJourneyType,
    UnknownStep,
    get_definition,
    journey_types,
)
from perfmonitor.journeys.metrics import journey_metric
from perfmonitor.journeys.scope import Journey, atrack, current, track, tracked
from perfmonitor.journeys.tracker import (
    InvalidJourneyInput,
    abandon,
    complete,
    fail,
    start,
    step,
)

astart = sync_to_async(start)
astep = sync_to_async(step)
acomplete = sync_to_async(complete)
afail = sync_to_async(fail)
aabandon = sync_to_async(abandon)

__all__ = [
    "InvalidJourneyInput",
    "Journey",
    "JourneyDefinition",
    "JourneyError",
    "StepDefinition",
    "UnknownJourneyType",
    "UnknownStep",
    "aabandon",
    "abandon",
    "acomplete",
    "afail",
    "analyze_journey",
    "astart",
    "astep",
    "atrack",
    "cleanup_stuck_journeys",
    "complete",
    "current",
    "fail",
    "get_definition",
    "handle_browser_event",
    "journey_metric",
    "journey_types",
    "start",
    "step",
    "track",
    "tracked",
]
