"""Formatting filters of the dashboard templates: numbers with units, changes, sizes."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()
DASH = "–"


@register.filter
def num(value: Any, digits: int = 0) -> str:
    """A number with thousands separators and ``digits`` decimals; a dash when missing."""
    if value is None or value == "":
        return DASH
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:,.{int(digits)}f}"


@register.filter
def vital(value: Any, unit: str) -> str:
    """A Web Vital the way people read it: CLS unitless with 3 decimals, times in ms or s."""
    if value is None:
        return DASH
    number = float(value)
    if not unit:
        return f"{number:.3f}"
    if number >= 10_000:
        return f"{number / 1000:.1f} s"
    return f"{number:,.0f} ms"


@register.filter
def signed(value: Any, digits: int = 1) -> str:
    """A percent change with its sign ("+12.5 %"); a dash when there is nothing to compare."""
    if value is None:
        return DASH
    return f"{float(value):+.{int(digits)}f} %"


@register.filter
def size(value: Any) -> str:
    """Bytes as kB / MB (1000-based, like browsers' devtools)."""
    if value is None:
        return DASH
    number = float(value)
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if number >= scale:
            return f"{number / scale:.1f} {unit}"
    return f"{number:.0f} B"


@register.filter
def percent(value: Any, digits: int = 1) -> str:
    """A 0..1 ratio as a percentage."""
    if value is None:
        return DASH
    return f"{float(value) * 100:.{int(digits)}f} %"
