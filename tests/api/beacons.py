"""Helpers shared by the collect tests: build batches and post them like a browser does."""

from __future__ import annotations

import json
from typing import Any

COLLECT_URL = "/perfmonitor/api/v1/collect"
PAGE = "https://lms.example.com/courses/12/?utm_source=mail&token=s3cret#reviews"
CHROME_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/126.0.0.0 Safari/537.36")


def batch(*events: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"session_id": "sess-1", "sample_rate": 1.0, "page": PAGE,
                            "events": list(events)}
    body.update(fields)
    return body


def vital(name: str = "LCP", value: Any = 1200.0, id: str = "v1-lcp", **extra: Any) -> dict:
    return {"type": "vital", "name": name, "value": value, "id": id, **extra}


def post(client: Any, body: Any, content_type: str = "text/plain;charset=UTF-8",
         **headers: Any) -> Any:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    headers.setdefault("HTTP_USER_AGENT", CHROME_UA)
    return client.post(COLLECT_URL, data, content_type=content_type, **headers)
