"""A realistic 50-event beacon batch: what one browser session sends over a few pages."""

from __future__ import annotations

from typing import Any

PAGE = "https://lms.example.com/courses/12/lessons/3/"


def batch_events(tag: str = "") -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    vitals = [("LCP", 1830.5), ("FCP", 912.0), ("TTFB", 180.2), ("CLS", 0.042), ("INP", 168.0)]
    for name, value in vitals:
        events.append({"type": "vital", "name": name, "value": value, "id": f"v1-{tag}{name}",
                       "navigation_type": "navigate", "ts": 1718000000000})
    for i in range(25):
        events.append({"type": "api", "url": f"https://lms.example.com/api/courses/{i}/lessons",
                       "method": "GET", "status": 200 if i % 12 else 503,
                       "duration": 40.0 + i * 3, "size": 2048 + i, "ts": 1718000000000})
    for i in range(12):
        events.append({"type": "render", "component": f"LessonCard{i % 4}",
                       "duration": 3.5 + i, "phase": "update", "ts": 1718000000000})
    for i in range(4):
        events.append({"type": "custom", "name": "checkout.step", "value": 120.0 + i,
                       "unit": "ms", "ts": 1718000000000})
    events.append({"type": "error", "message": "Cannot read properties of undefined (reading "
                   "'id')", "error_type": "TypeError", "source": "https://lms.example.com/"
                   "static/app.js", "line": 120, "column": 17, "kind": "error",
                   "stack": "TypeError: x\n    at render (https://lms.example.com/static/app.js"
                   ":120:17)"})
    events.append({"type": "resource", "js_transfer": 310_000, "css_transfer": 42_000,
                   "js_decoded": 980_000, "css_decoded": 150_000, "total_transfer": 520_000,
                   "count": 23})
    events.append({"type": "memory", "used": 18_000_000, "total": 26_000_000,
                   "limit": 4_294_705_152})
    events.append({"type": "vital", "name": "FID", "value": 4.0, "id": f"v1-{tag}FID"})
    assert len(events) == 50
    return events


def batch(session: str) -> dict[str, Any]:
    return {"session_id": session, "sample_rate": 1.0, "page": PAGE,
            "events": batch_events(session)}
