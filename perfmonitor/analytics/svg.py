"""Small server-rendered SVG charts: line chart, bar chart and gauge.

Inline SVG strings with axes, units and ``<title>`` tooltips on every point
and bar; no JavaScript, no external assets, so they work in a printed report,
an email and the admin alike. Colours come from CSS custom properties with
fallbacks (``--pm-line``, ``--pm-good``...), so a page's dark mode can restyle
them. Every text is escaped.

    line_chart([Series("p95", [(t0, 120.0), (t1, None), ...])], unit="ms")
    bar_chart([("/courses/", 5200.0), ...], unit="ms")
    gauge(87.5, label="Performance score")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

PALETTE = ("var(--pm-line, #2563eb)", "var(--pm-line-2, #d97706)", "var(--pm-line-3, #059669)",
           "var(--pm-line-4, #7c3aed)")
AXIS = "var(--pm-axis, #6b7280)"
GRID = "var(--pm-grid, #e5e7eb)"
TEXT = "var(--pm-text, #111827)"
GOOD, WARN, BAD = "var(--pm-good, #16a34a)", "var(--pm-warn, #d97706)", "var(--pm-bad, #dc2626)"


@dataclass
class Series:
    label: str
    points: Sequence[tuple[datetime | float, float | None]]
    color: str | None = None


def _fmt(value: float, unit: str = "") -> str:
    if unit == "%":
        text = f"{value:.1f}"
    elif abs(value) >= 1_000_000:
        text = f"{value / 1_000_000:.1f}M"
    elif abs(value) >= 10_000:
        text = f"{value / 1000:.0f}k"
    elif abs(value) >= 100 or value == int(value):
        text = f"{value:.0f}"
    elif abs(value) >= 1:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip() if unit and unit != "%" else text + ("%" if unit == "%" else "")


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks: list[float] = []
    value = start
    while value <= high + step * 0.5 and len(ticks) < 12:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _x_value(x: datetime | float) -> float:
    return x.timestamp() if isinstance(x, datetime) else float(x)


def _x_label(x: datetime | float, span_seconds: float) -> str:
    if isinstance(x, datetime):
        return x.strftime("%H:%M" if span_seconds <= 2 * 86400 else "%d %b")
    return _fmt(x)


def _open(width: int, height: int, title: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
            f'class="pm-chart" font-family="system-ui, sans-serif" font-size="11">',
            f"<title>{escape(title)}</title>"]


def line_chart(series: Sequence[Series], *, title: str = "", unit: str = "",
               width: int = 640, height: int = 220, y_min: float | None = 0.0) -> str:
    """Lines over time (or any x); None values break the line. Empty data says so."""
    left, right, top, bottom = 56, 12, 12 + (14 if len(series) > 1 else 0), 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for _x, v in s.points if v is not None]
    xs = [_x_value(x) for s in series for x, _v in s.points]
    parts = _open(width, height, title or "chart")
    if not values or not xs:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
                     f'fill="{AXIS}">No data in this window</text></svg>')
        return "".join(parts)
    low = min(values) if y_min is None else min(y_min, min(values))
    ticks = nice_ticks(low, max(values))
    y_lo, y_hi = ticks[0], ticks[-1]
    x_lo, x_hi = min(xs), max(xs)
    x_span = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return left + (x - x_lo) / x_span * plot_w

    def py(v: float) -> float:
        return top + plot_h - (v - y_lo) / ((y_hi - y_lo) or 1) * plot_h

    for tick in ticks:
        y = py(tick)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{GRID}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}">'
                     f"{escape(_fmt(tick, unit))}</text>")
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" '
                 f'stroke="{AXIS}"/>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" '
                 f'y2="{top + plot_h}" stroke="{AXIS}"/>')
    first_points = series[0].points if series else []
    if first_points:
        for index in sorted({0, len(first_points) // 2, len(first_points) - 1}):
            x = first_points[index][0]
            anchor = "start" if index == 0 else ("end" if index == len(first_points) - 1
                                                 else "middle")
            parts.append(f'<text x="{px(_x_value(x)):.1f}" y="{height - 8}" '
                         f'text-anchor="{anchor}" fill="{AXIS}">'
                         f"{escape(_x_label(x, x_span))}</text>")
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for x, v in s.points:
            if v is None:
                segments.append([])
                continue
            segments[-1].append(f"{px(_x_value(x)):.1f},{py(v):.1f}")
        for segment in segments:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" '
                             f'points="{" ".join(segment)}"/>')
        for x, v in s.points:
            if v is None:
                continue
            tip = f"{s.label}: {_fmt(v, unit)} at {_x_label(x, 0)}"
            parts.append(f'<circle cx="{px(_x_value(x)):.1f}" cy="{py(v):.1f}" r="2.2" '
                         f'fill="{color}"><title>{escape(tip)}</title></circle>')
        if len(series) > 1:
            parts.append(f'<rect x="{left + i * 110}" y="2" width="10" height="10" '
                         f'fill="{color}"/><text x="{left + i * 110 + 14}" y="11" '
                         f'fill="{TEXT}">{escape(s.label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(items: Sequence[tuple[str, float]], *, title: str = "", unit: str = "",
              width: int = 640, bar_height: int = 18, limit: float | None = None,
              colors: Sequence[str] | None = None) -> str:
    """Horizontal bars, one per (label, value); ``limit`` draws a budget line."""
    label_w, right, top = 220, 70, 8
    plot_w = width - label_w - right
    height = top + len(items) * (bar_height + 6) + 24
    parts = _open(width, height, title or "chart")
    if not items:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
                     f'fill="{AXIS}">No data in this window</text></svg>')
        return "".join(parts)
    high = max([v for _l, v in items] + ([limit] if limit else [])) or 1.0
    for i, (label, value) in enumerate(items):
        y = top + i * (bar_height + 6)
        w = max(1.0, value / high * plot_w)
        color = (colors[i] if colors else
                 (BAD if limit is not None and value > limit else PALETTE[0]))
        short = label if len(label) <= 34 else label[:31] + "..."
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" '
                     f'fill="{TEXT}">{escape(short)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_height}" '
                     f'fill="{color}"><title>{escape(f"{label}: {_fmt(value, unit)}")}</title>'
                     f"</rect>")
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_height * 0.7:.1f}" '
                     f'fill="{AXIS}">{escape(_fmt(value, unit))}</text>')
    if limit is not None:
        x = label_w + limit / high * plot_w
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 20}" '
                     f'stroke="{BAD}" stroke-dasharray="4 3"><title>'
                     f'{escape("budget " + _fmt(limit, unit))}</title></line>')
    parts.append(f'<text x="{label_w}" y="{height - 6}" fill="{AXIS}">0</text>'
                 f'<text x="{label_w + plot_w}" y="{height - 6}" text-anchor="end" '
                 f'fill="{AXIS}">{escape(_fmt(high, unit))}</text></svg>')
    return "".join(parts)


def gauge(value: float | None, *, label: str = "", maximum: float = 100.0,
          bands: Sequence[tuple[float, str]] = ((50, BAD), (90, WARN), (100, GOOD)),
          size: int = 180) -> str:
    """A half-circle gauge, coloured by band (Lighthouse's 0-49 / 50-89 / 90-100)."""
    cx, cy, r = size / 2, size * 0.58, size * 0.42
    parts = _open(size, int(size * 0.75), label or "gauge")

    def point(fraction: float) -> tuple[float, float]:
        angle = math.pi * (1 - fraction)
        return cx + r * math.cos(angle), cy - r * math.sin(angle)

    def arc(a: float, b: float, color: str, width: float) -> str:
        (x1, y1), (x2, y2) = point(a), point(b)
        return (f'<path d="M {x1:.1f} {y1:.1f} A {r:.1f} {r:.1f} 0 0 1 {x2:.1f} {y2:.1f}" '
                f'fill="none" stroke="{color}" stroke-width="{width}"/>')

    parts.append(arc(0, 1, GRID, 14))
    if value is None:
        parts.append(f'<text x="{cx}" y="{cy}" text-anchor="middle" font-size="16" '
                     f'fill="{AXIS}">no data</text>')
    else:
        fraction = max(0.0, min(1.0, value / maximum))
        color = next((c for limit, c in bands if value < limit), bands[-1][1])
        if fraction > 0:
            parts.append(arc(0, fraction, color, 14))
        parts.append(f'<text x="{cx}" y="{cy - 4}" text-anchor="middle" font-size="28" '
                     f'font-weight="600" fill="{color}">{value:.0f}<title>'
                     f"{escape(f'{label}: {value:.1f} / {maximum:g}')}</title></text>")
    parts.append(f'<text x="{cx}" y="{cy + 18}" text-anchor="middle" fill="{AXIS}">'
                 f"{escape(label)}</text></svg>")
    return "".join(parts)
