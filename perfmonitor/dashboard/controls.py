"""The dashboard's controls: time range and filters, read from the query string.

Bad input is a clear 400 naming the parameter, never a 500 and never a silent
fallback that shows numbers for a window the user did not ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.http import QueryDict

from perfmonitor.analytics.query import Window

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
# Trend resolution per range: 48 to 120 points (enough to read a trend on a few hundred
# pixels, each with its tooltip), each a multiple of a rollup level so that a bucket is
# always whole rows.
TREND_BUCKETS: dict[str, timedelta] = {
    "1h": timedelta(minutes=1),
    "6h": timedelta(minutes=5),
    "24h": timedelta(minutes=30),
    "7d": timedelta(hours=2),
    "30d": timedelta(hours=6),
}
RANGE_LABELS = {"1h": "1 hour", "6h": "6 hours", "24h": "24 hours", "7d": "7 days",
                "30d": "30 days"}
DEFAULT_RANGE = "24h"
DEVICES = ("mobile", "tablet", "desktop")
FILTER_KEYS = ("route", "page", "device")
MAX_FILTER_LENGTH = 255


class ControlError(ValueError):
    """A control value the dashboard cannot honour; the message names the parameter."""


@dataclass(frozen=True)
class Controls:
    range_key: str = DEFAULT_RANGE
    route: str = ""
    page: str = ""
    device: str = ""
    now: datetime | None = field(default=None, compare=False)

    @property
    def span(self) -> timedelta:
        return RANGES[self.range_key]

    @property
    def trend_bucket(self) -> timedelta:
        return TREND_BUCKETS[self.range_key]

    @property
    def range_label(self) -> str:
        return RANGE_LABELS[self.range_key]

    def window(self) -> Window:
        return Window.last(self.span, now=self.now)

    def filters(self) -> dict[str, str]:
        """Only the filters that are set, in the shape the analytics functions take."""
        return {key: value for key in FILTER_KEYS if (value := getattr(self, key))}

    def query_string(self, **changes: str) -> str:
        values = {"range": self.range_key, **self.filters(), **changes}
        return urlencode({k: v for k, v in values.items() if v})


def parse_controls(params: QueryDict, now: datetime | None = None) -> Controls:
    range_key = params.get("range") or DEFAULT_RANGE
    if range_key not in RANGES:
        raise ControlError(f"range must be one of {', '.join(RANGES)}; got {range_key[:20]!r}")
    values: dict[str, str] = {}
    for key in FILTER_KEYS:
        value = (params.get(key) or "").strip()
        if len(value) > MAX_FILTER_LENGTH:
            raise ControlError(f"{key} is longer than {MAX_FILTER_LENGTH} characters")
        if any(ord(ch) < 32 for ch in value):
            raise ControlError(f"{key} contains control characters")
        values[key] = value
    if values["device"] and values["device"] not in DEVICES:
        raise ControlError(f"device must be one of {', '.join(DEVICES)}; "
                           f"got {values['device'][:20]!r}")
    return Controls(range_key=range_key, now=now, **values)
