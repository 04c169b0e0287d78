"""Business impact: do journeys complete less often when the site is slow?

Journey completion rate by the LCP the journey's session saw (good / needs
improvement / poor) and by the server latency its user saw (median request
duration: < 500 ms, 500 ms - 2 s, > 2 s). That needs journeys, vitals and
requests of the same session or user together, which rollups do not keep, so
this is the one analysis that reads raw rows: the newest ``IMPACT_MAX_ROWS``
journeys that ended in the window, and the sampled vital and request rows of
their sessions and users. It runs for reports and the API, never on the
dashboard's hot path. Every bucket states its sample size; a bucket under
``IMPACT_MIN_SAMPLE`` journeys states no rate, and no comparison is claimed
unless two buckets have enough data.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from perfmonitor.analytics.query import Window
from perfmonitor.analytics.vitals import GOOD, NEEDS_IMPROVEMENT, POOR, rate
from perfmonitor.conf import settings
from perfmonitor.models import PerformanceMetric, UserJourney, WebVital

ENDINGS = ("completed", "abandoned", "failed")
LATENCY_BUCKETS = ((500.0, "< 500 ms"), (2000.0, "500 ms - 2 s"), (float("inf"), "> 2 s"))
_CHUNK = 500
MAX_SAMPLE_ROWS = 200_000


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def _journeys(window: Window, limit: int) -> list[dict[str, Any]]:
    return list(UserJourney.objects
                .filter(status__in=ENDINGS, start_time__gte=window.start,
                        start_time__lt=window.end)
                .order_by("-start_time")
                .values("session_id", "user_id", "status")[:limit])


def _lcp_by_session(window: Window, sessions: list[str]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    read = 0
    for chunk in _chunks(sessions):
        for session, value in (WebVital.objects
                               .filter(metric_name="LCP", session_id__in=chunk,
                                       timestamp__gte=window.start, timestamp__lt=window.end)
                               .values_list("session_id", "value")[:MAX_SAMPLE_ROWS - read]):
            values.setdefault(session, []).append(value)
            read += 1
    # The session's worst page load is what the user lived through.
    return {session: max(v) for session, v in values.items()}


def _latency_by_user(window: Window, users: list[str]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    read = 0
    for chunk in _chunks(users):
        for user, duration in (PerformanceMetric.objects
                               .filter(metric_type="request", user_id__in=chunk,
                                       timestamp__gte=window.start, timestamp__lt=window.end,
                                       duration__isnull=False)
                               .values_list("user_id", "duration")[:MAX_SAMPLE_ROWS - read]):
            values.setdefault(user, []).append(duration)
            read += 1
    return {user: statistics.median(v) for user, v in values.items()}


def _bucket_rows(labels: list[str], outcomes: dict[str, list[str]],
                 minimum: int) -> list[dict[str, Any]]:
    rows = []
    for label in labels:
        statuses = outcomes.get(label, [])
        n = len(statuses)
        done = sum(1 for s in statuses if s == "completed")
        enough = n >= minimum
        rows.append({"bucket": label, "journeys": n, "completed": done,
                     "completion_rate": done / n if enough else None,
                     "enough_data": enough})
    return rows


def _finding(rows: list[dict[str, Any]], what: str) -> str:
    usable = [r for r in rows if r["enough_data"]]
    if len(usable) < 2:
        return f"Not enough data to relate {what} to journey completion."
    best, worst = usable[0], usable[-1]
    gap = best["completion_rate"] - worst["completion_rate"]
    if abs(gap) < 0.02:
        return f"Journey completion does not differ by {what} in this sample."
    direction = "lower" if gap > 0 else "higher"
    return (f"Journeys whose {what} was '{worst['bucket']}' completed {abs(gap) * 100:.1f} "
            f"points {direction} than '{best['bucket']}' ({worst['journeys']} vs "
            f"{best['journeys']} journeys; correlation, not proof of cause).")


def business_impact(window: Window) -> dict[str, Any]:
    minimum = settings.IMPACT_MIN_SAMPLE
    journeys = _journeys(window, settings.IMPACT_MAX_ROWS)
    sessions = sorted({j["session_id"] for j in journeys if j["session_id"]})
    users = sorted({j["user_id"] for j in journeys if j["user_id"]})
    lcp = _lcp_by_session(window, sessions)
    latency = _latency_by_user(window, users)

    by_vital: dict[str, list[str]] = {}
    by_latency: dict[str, list[str]] = {}
    for j in journeys:
        seen = lcp.get(j["session_id"]) if j["session_id"] else None
        if seen is not None:
            by_vital.setdefault(rate("LCP", seen), []).append(j["status"])
        median = latency.get(j["user_id"]) if j["user_id"] else None
        if median is not None:
            label = next(lbl for limit, lbl in LATENCY_BUCKETS if median < limit)
            by_latency.setdefault(label, []).append(j["status"])
    vital_rows = _bucket_rows([GOOD, NEEDS_IMPROVEMENT, POOR], by_vital, minimum)
    latency_rows = _bucket_rows([label for _limit, label in LATENCY_BUCKETS], by_latency,
                                minimum)
    return {
        "window": window.as_dict(),
        "sample": {"journeys": len(journeys), "journey_limit": settings.IMPACT_MAX_ROWS,
                   "sessions_with_lcp": len(lcp), "users_with_requests": len(latency),
                   "min_per_bucket": minimum,
                   "note": "raw vital and request rows are sampled (SAMPLE_RATE, "
                           "CLIENT_SAMPLE_RATE); buckets use what was kept"},
        "by_lcp": {"rows": vital_rows, "finding": _finding(vital_rows, "LCP")},
        "by_server_latency": {"rows": latency_rows,
                              "finding": _finding(latency_rows, "server latency")},
    }
