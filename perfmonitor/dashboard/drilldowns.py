"""Drill-down pages: one route, one query fingerprint, one page, one journey, one alert."""

from __future__ import annotations

from typing import Any

from perfmonitor.analytics import assessment, insights, query
from perfmonitor.analytics.vitals import VITALS, vital_kind
from perfmonitor.dashboard import charts
from perfmonitor.dashboard.controls import Controls


class NotFound(LookupError):
    pass


class BadParameter(ValueError):
    pass


def route(controls: Controls, name: str, method: str = "") -> dict[str, Any]:
    if not name:
        raise BadParameter("name (the route template, e.g. /courses/<int:pk>/) is required")
    window = controls.window()
    by_method = query.stats("request", window=window, name=name, dimension=method or None,
                            group_by=("dimension",))
    stats = query.total("request", window=window, name=name, dimension=method or None)
    queries: list[dict[str, Any]] = []
    n_plus_one: list[dict[str, Any]] = []
    if stats.count:
        # Query rollups name their origin "METHOD route" (capture/records.py).
        origins = [f"{m} {name}" for (m,) in by_method]
        by_fp = query.stats("query", window=window, group_by=("name",), dimension=origins)
        from perfmonitor.models import QueryFingerprint

        ranked = sorted(by_fp.items(), key=lambda kv: -kv[1].sum)[:15]
        sql = dict(QueryFingerprint.objects.filter(fingerprint__in=[k[0] for k, _ in ranked])
                   .values_list("fingerprint", "sql"))
        hot_spots = [f for f in insights.n_plus_one(window)
                     if f["evidence"]["route"] == name
                     and (not method or f["evidence"]["method"] == method)]
        flagged = {f["evidence"]["fingerprint"] for f in hot_spots}
        per_request = stats.count or 1
        queries = [{"fingerprint": fp, "sql": sql.get(fp, ""), "count": s.count,
                    "per_request": s.count / per_request, "p95": s.p95, "total_ms": s.sum,
                    "n_plus_one": fp in flagged}
                   for (fp,), s in ranked]
        n_plus_one = [{"title": f["title"], "fingerprint": f["evidence"]["fingerprint"],
                       "per_request": f["evidence"]["queries_per_request"],
                       "requests": f["evidence"]["requests_affected"],
                       "ms_lost": f["impact"]["ms_lost"]} for f in hot_spots]
    return {"name": name, "method": method, "stats": stats.as_dict(window),
            "empty": not stats.count, "queries": queries, "n_plus_one": n_plus_one,
            "histogram": charts.histogram(stats.sketch, unit="ms",
                                          title=f"Latency distribution of {name} (requests)")}


def query_detail(controls: Controls, fingerprint: str) -> dict[str, Any]:
    from perfmonitor.models import QueryFingerprint

    window = controls.window()
    sql = QueryFingerprint.objects.filter(fingerprint=fingerprint).values_list(
        "sql", flat=True).first()
    by_origin = query.stats("query", window=window, name=fingerprint, group_by=("dimension",))
    if sql is None and not by_origin:
        raise NotFound(f"No query fingerprint {fingerprint!r}.")
    total = query.total("query", window=window, name=fingerprint)
    points = query.trend("query", window=window, name=fingerprint,
                         bucket=controls.trend_bucket)
    chart = charts.timeline([("p95", [(t, s.p95) for t, s in points])], unit="ms",
                            title=f"Query {fingerprint} p95 (ms)") if total.count else None
    origins = [{"origin": origin, "count": s.count, "p95": s.p95, "total_ms": s.sum}
               for (origin,), s in sorted(by_origin.items(), key=lambda kv: -kv[1].sum)]
    return {"fingerprint": fingerprint, "sql": sql or "", "stats": total.as_dict(window),
            "origins": origins, "chart": chart, "empty": not total.count}


def page(controls: Controls, url: str) -> dict[str, Any]:
    if not url:
        raise BadParameter("url (the page path, e.g. /courses/) is required")
    window = controls.window()
    device = controls.device or None
    found = assessment.assess_pages(window, page=url, device=device)
    if not found:
        return {"url": url, "rows": [], "empty": True}
    item = found[0]
    rows = [{"name": name, "unit": v["unit"], "p75": v["p75"], "count": v["samples"],
             "rating": v["rating"] or ""}
            for name, v in item["vitals"].items() if v["samples"] or VITALS[name].scored]
    charts_ = []
    for name in ("LCP", "INP", "CLS"):
        points = query.trend(vital_kind(device), window=window, name=name, dimension=url,
                             bucket=controls.trend_bucket)
        if any(s.count for _, s in points):
            unit = VITALS[name].unit
            charts_.append({"label": f"{name} p75 ({unit or 'unitless'})",
                            "svg": charts.timeline(
                                [(f"{name} p75", [(t, s.p75) for t, s in points])], unit=unit,
                                title=f"{name} p75 on {url}",
                                threshold=("good", VITALS[name].good))})
    status = item["assessment"]["status"]
    return {"url": url, "rows": rows, "charts": charts_, "empty": not item["samples"],
            "assessment": {"label": status, "css": {"passed": "good", "failed": "poor"}.get(
                status, "none"), "detail": item["assessment"]["reason"]}}


def journey(controls: Controls, journey_type: str) -> dict[str, Any]:
    from perfmonitor.journeys import JourneyError, analyze_journey, get_definition

    try:
        definition = get_definition(journey_type)
    except JourneyError as exc:
        raise NotFound(str(exc)) from exc
    analysis = analyze_journey(journey_type, controls.window())
    counts, funnel_ = analysis["counts"], analysis["funnel"]
    bottleneck = analysis["bottleneck"]
    steps = [{"name": s["name"], "label": s["label"], "reached": s["reached"],
              "conversion": s["step_conversion"], "median_ms": s["median_ms"],
              "p75_ms": s["p75_ms"], "target_ms": s["target_ms"],
              "over": s["over_target"] is not None and s["over_target"] > 1}
             for s in funnel_["steps"]]
    bars = [(s["label"], float(s["reached"])) for s in funnel_["steps"]]
    timings = [(s["label"], float(s["median_ms"] or 0.0)) for s in funnel_["steps"]]
    reasons = [{"status": status, **r} for status, items in analysis["reasons"].items()
               for r in items]
    return {
        "key": journey_type, "label": definition.label, "target_ms": definition.target_ms,
        "step_count": len(definition.steps), "started": counts["started"],
        "completed": counts["completed"], "abandoned": counts["abandoned"],
        "failed": counts["failed"], "in_progress": counts["in_progress"],
        "completion_rate": analysis["rates"]["completion_rate"],
        "apdex": analysis["apdex"]["score"], "p75_ms": analysis["duration"]["p75_ms"],
        "bottleneck": bottleneck["step"] if bottleneck else "",
        "bottleneck_reason": bottleneck["reason"] if bottleneck else "",
        "steps": steps, "reasons": reasons, "sample": analysis["sample"],
        "funnel_chart": charts.bars(bars, unit="", title=f"{definition.label} funnel")
        if funnel_["ended"] else None,
        "timing_chart": charts.bars(timings, unit="ms",
                                    title=f"{definition.label} median step time (ms)")
        if funnel_["ended"] else None,
        "empty": not counts["started"],
    }


def alert(controls: Controls, alert_pk: str) -> dict[str, Any]:
    from django.core.exceptions import ValidationError

    from perfmonitor.models import PerformanceAlert
    from perfmonitor.models.alerts import AlertState, ResolutionReason
    from perfmonitor.models.notifications import NotificationDelivery

    try:
        item = PerformanceAlert.objects.select_related("rule", "acknowledged_by").get(pk=alert_pk)
    except (PerformanceAlert.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound(f"No alert {alert_pk!r}.") from exc
    events = [(item.timestamp, f"condition met ({item.severity})")]
    if item.fired_at:
        events.append((item.fired_at, "firing"))
    if item.acknowledged_at:
        who = item.acknowledged_by.get_username() if item.acknowledged_by else "someone"
        events.append((item.acknowledged_at, f"acknowledged by {who}"))
    if item.resolved_at:
        reason = _label(ResolutionReason, item.resolution_reason) or "resolved"
        events.append((item.resolved_at, f"{item.state}: {reason}"))
    deliveries = [
        {"at": d.started_at, "channel": d.notification.channel.name,
         "event": d.notification.event, "attempt": d.attempt, "outcome": _outcome(d)}
        for d in NotificationDelivery.objects.filter(notification__alert=item)
        .select_related("notification__channel").order_by("started_at")[:200]]
    for d in deliveries:
        events.append((d["at"], f"{d['event']} notification to {d['channel']}, attempt "
                                f"{d['attempt']}: {d['outcome']}"))
    timeline = [{"at": at, "text": text} for at, text in sorted(events, key=lambda e: e[0])]
    return {"alert": item, "state": _label(AlertState, item.state), "timeline": timeline,
            "deliveries": deliveries, "statistics": alert_statistics_line(controls),
            "empty": False}


def alert_statistics_line(controls: Controls) -> str:
    """The alerting package's statistics of the window, in one line."""
    from perfmonitor.alerts import alert_statistics

    stats = alert_statistics(controls.window())
    parts = [f"{stats['fired']} fired", f"{stats['acknowledged']} acknowledged",
             f"{stats['resolved']} resolved"]
    for key, label in (("mtta_seconds", "mean time to acknowledge"),
                       ("mttr_seconds", "mean time to resolve")):
        if stats.get(key) is not None:
            parts.append(f"{label} {stats[key] / 60:.1f} min")
    return f"All alerts in the last {controls.range_label}: " + " · ".join(parts)


def _outcome(delivery: Any) -> str:
    from perfmonitor.models.notifications import DeliveryOutcome

    text = _label(DeliveryOutcome, delivery.outcome)
    if delivery.status_code:
        text += f" (HTTP {delivery.status_code})"
    if delivery.error:
        text += f": {delivery.error[:120]}"
    return text


def _label(choices: Any, value: str) -> str:
    return str(dict(choices.choices).get(value, value))
