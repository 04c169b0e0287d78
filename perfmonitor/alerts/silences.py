"""Silences (one-off, by label matchers) and recurring maintenance windows.

Both mute notifications only: matching alerts are still evaluated, change
state and show in the admin with a flag. Matchers follow Alertmanager: ``=``,
``!=``, ``=~`` and ``!~`` (regular expressions match the whole value); a label
that is missing has the value "".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError

from perfmonitor.alerts.rules import LABEL_NAME
from perfmonitor.models.alerts import MaintenanceWindow, Silence

OPS = ("=", "!=", "=~", "!~")
MAX_MAINTENANCE_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Matcher:
        op = raw.get("op", "=")
        value = str(raw.get("value", ""))
        pattern = re.compile(value) if op in ("=~", "!~") else None
        return cls(str(raw.get("label", "")), op, value, pattern)

    def matches(self, labels: dict[str, str]) -> bool:
        actual = str(labels.get(self.label, ""))
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = bool(self.pattern and self.pattern.fullmatch(actual))
        return hit if self.op == "=~" else not hit


def parse_matchers(raw: Any) -> list[Matcher]:
    return [Matcher.parse(item) for item in raw or []]


def matches_all(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def describe_matchers(raw: Any) -> str:
    try:
        return ", ".join(f"{m['label']}{m.get('op', '=')}\"{m.get('value', '')}\""
                         for m in raw or []) or "(all alerts)"
    except (TypeError, KeyError):
        return "(invalid matchers)"


def matcher_errors(raw: Any, *, required: bool) -> list[str]:
    if not isinstance(raw, list):
        return ["Matchers must be a list of {\"label\", \"op\", \"value\"} objects."]
    if required and not raw:
        return ["A silence needs at least one matcher (silencing everything is a mistake)."]
    errors = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or set(item) - {"label", "op", "value"}:
            errors.append(f"Matcher {index} must be {{\"label\", \"op\", \"value\"}}.")
            continue
        if not LABEL_NAME.match(str(item.get("label", ""))):
            errors.append(f"Matcher {index}: {item.get('label')!r} is not a label name.")
        if item.get("op", "=") not in OPS:
            errors.append(f"Matcher {index}: op must be one of {', '.join(OPS)}.")
        if not isinstance(item.get("value", ""), str):
            errors.append(f"Matcher {index}: value must be a string.")
        elif item.get("op") in ("=~", "!~"):
            try:
                re.compile(item["value"])
            except re.error as exc:
                errors.append(f"Matcher {index}: invalid regular expression: {exc}.")
    if required and not errors and all(Matcher.parse(m).matches({}) for m in raw):
        errors.append("These matchers match alerts without any label, i.e. everything; "
                      "add a matcher that needs a label value.")
    return errors


def validate_silence(silence: Silence) -> None:
    errors: dict[str, list[str]] = {}
    found = matcher_errors(silence.matchers, required=True)
    if found:
        errors["matchers"] = found
    if silence.starts_at and silence.ends_at and silence.ends_at <= silence.starts_at:
        errors["ends_at"] = ["A silence must end after it starts."]
    if not (silence.comment or "").strip():
        errors["comment"] = ["Say why (the comment is shown next to every silenced alert)."]
    if errors:
        raise ValidationError(errors)


def validate_maintenance_window(window: MaintenanceWindow) -> None:
    errors: dict[str, list[str]] = {}
    found = matcher_errors(window.matchers, required=False)
    if found:
        errors["matchers"] = found
    try:
        ZoneInfo(window.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = [f"Unknown time zone {window.timezone!r} (use e.g. Europe/Berlin)."]
    weekdays = window.weekdays
    if not isinstance(weekdays, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in weekdays):
        errors["weekdays"] = ["Weekdays are numbers 0 (Monday) to 6 (Sunday)."]
    if not 1 <= (window.duration_minutes or 0) <= MAX_MAINTENANCE_MINUTES:
        errors["duration_minutes"] = ["Between 1 minute and 7 days."]
    if window.active_from and window.active_until and window.active_until < window.active_from:
        errors["active_until"] = ["The window stops being active before it starts."]
    if errors:
        raise ValidationError(errors)


def occurrence_at(window: MaintenanceWindow, moment: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence of ``window`` that contains ``moment``, if any."""
    tz = ZoneInfo(window.timezone)
    local = moment.astimezone(tz)
    days_back = window.duration_minutes // 1440 + 1
    weekdays = set(window.weekdays or [])
    for back in range(days_back + 1):
        day: date = local.date() - timedelta(days=back)
        if weekdays and day.weekday() not in weekdays:
            continue
        if window.active_from and day < window.active_from:
            continue
        if window.active_until and day > window.active_until:
            continue
        start_time: time = window.start_time
        start = datetime.combine(day, start_time, tzinfo=tz)
        end = start + timedelta(minutes=window.duration_minutes)
        if start <= moment < end:
            return start, end
    return None


class Suppressions:
    """Active silences and maintenance windows, loaded once per evaluation run."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.silences = [(s, parse_matchers(s.matchers)) for s in
                         Silence.objects.filter(starts_at__lte=now, ends_at__gt=now)]
        self.windows = [(w, parse_matchers(w.matchers)) for w in
                        MaintenanceWindow.objects.filter(enabled=True)]

    def silence_for(self, labels: dict[str, str]) -> Silence | None:
        for silence, matchers in self.silences:
            if matches_all(matchers, labels):
                return silence
        return None

    def maintenance_for(self, labels: dict[str, str]) -> MaintenanceWindow | None:
        for window, matchers in self.windows:
            if matches_all(matchers, labels) and occurrence_at(window, self.now):
                return window
        return None


def is_muted(labels: dict[str, str], now: datetime) -> bool:
    """Whether a silence or maintenance window mutes these labels right now."""
    found = Suppressions(now)
    return found.silence_for(labels) is not None or found.maintenance_for(labels) is not None
