"""Inline SVG for the dashboard's panels: gauge, line chart, bars, histogram.

Server-rendered, no script and no external asset, so charts work offline and
in the printed report alike. Every chart has axes with units and a
``<title>`` per data point for tooltips; colours are CSS classes so the
admin's dark mode applies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

Point = tuple[datetime, float | None]

W, H = 560, 180
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 12, 26


def _fmt(value: float, unit: str = "") -> str:
    if unit == "B":
        for suffix, scale in (("MB", 1e6), ("kB", 1e3)):
            if abs(value) >= scale:
                return f"{value / scale:.1f} {suffix}"
        return f"{value:.0f} B"
    if unit == "%":
        text = f"{value:.1f}"
    elif abs(value) >= 1000 and unit in ("ms", "B"):
        text = f"{value / 1000:.1f}k"
    elif abs(value) >= 100 or value == int(value):
        text = f"{value:.0f}"
    else:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".strip() if unit else text


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _svg(width: int, height: int, label: str, body: list[str]) -> SafeString:
    return mark_safe(
        f'<svg class="pm-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>")


def _axes(y_max: float, unit: str, x_labels: Sequence[tuple[float, str]]) -> list[str]:
    out = []
    plot_h = H - PAD_T - PAD_B
    for i in range(5):
        value = y_max * i / 4
        y = PAD_T + plot_h - plot_h * i / 4
        out.append(f'<line class="pm-grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/>')
        out.append(f'<text class="pm-tick" x="{PAD_L - 4}" y="{y + 3:.1f}" '
                   f'text-anchor="end">{escape(_fmt(value, unit))}</text>')
    out.append(f'<line class="pm-axis" x1="{PAD_L}" x2="{W - PAD_R}" y1="{H - PAD_B}" '
               f'y2="{H - PAD_B}"/>')
    out.append(f'<line class="pm-axis" x1="{PAD_L}" x2="{PAD_L}" y1="{PAD_T}" '
               f'y2="{H - PAD_B}"/>')
    for index, (x, text) in enumerate(x_labels):
        anchor = "start" if index == 0 else "end" if index == len(x_labels) - 1 else "middle"
        out.append(f'<text class="pm-tick" x="{x:.1f}" y="{H - 8}" text-anchor="{anchor}">'
                   f"{escape(text)}</text>")
    return out


def _time_label(moment: datetime, span_seconds: float) -> str:
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return local.strftime("%H:%M") if span_seconds <= 2 * 86400 else local.strftime("%d %b")


def line_chart(series: Sequence[tuple[str, Sequence[Point]]], *, unit: str, label: str,
               threshold: float | None = None, bridge_gaps: bool = True) -> SafeString:
    """One polyline per named series over time, a dot (with its tooltip) per bucket.

    Buckets without data have no value; with ``bridge_gaps`` the line joins the
    buckets around them (sparse traffic still reads as a trend, and the dots
    show where the data is), otherwise the line breaks.
    """
    values = [v for _, pts in series for _, v in pts if v is not None]
    if threshold is not None:
        values.append(threshold)
    y_max = _nice_max(max(values, default=0.0))
    times = [t for _, pts in series for t, _ in pts]
    if not times:
        return _svg(W, H, label, [])
    t0, t1 = min(times).timestamp(), max(times).timestamp()
    span = max(t1 - t0, 1.0)
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def xy(moment: datetime, value: float) -> tuple[float, float]:
        return (PAD_L + plot_w * (moment.timestamp() - t0) / span,
                PAD_T + plot_h - plot_h * min(value, y_max) / y_max)

    ticks = [(PAD_L + plot_w * i / 4,
              _time_label(datetime.fromtimestamp(t0 + span * i / 4, tz=min(times).tzinfo), span))
             for i in range(5)]
    body = _axes(y_max, unit, ticks)
    if threshold is not None:
        _, y = xy(min(times), threshold)
        body.append(f'<line class="pm-threshold" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" '
                    f'y2="{y:.1f}"><title>{escape(f"budget {_fmt(threshold, unit)}")}</title>'
                    f"</line>")
    for index, (name, points) in enumerate(series):
        segments: list[list[tuple[float, float]]] = [[]]
        dots = []
        for moment, value in points:
            if value is None:
                if segments[-1] and not bridge_gaps:
                    segments.append([])
                continue
            x, y = xy(moment, value)
            segments[-1].append((x, y))
            dots.append(f'<circle class="pm-dot pm-s{index}" cx="{x:.1f}" cy="{y:.1f}" r="2">'
                        f"<title>{escape(name)} {moment:%Y-%m-%d %H:%M}: "
                        f"{escape(_fmt(value, unit))}</title></circle>")
        for seg in segments:
            if not seg:
                continue
            d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in seg)
            if len(seg) == 1:
                d += " l0.1,0"
            body.append(f'<path class="pm-line pm-s{index}" d="{d}"><title>{escape(name)}'
                        f"</title></path>")
        if len(dots) <= 200:
            body.extend(dots)
    legend_x = PAD_L + 6
    for index, (name, _) in enumerate(series):
        body.append(f'<text class="pm-legend pm-s{index}" x="{legend_x}" y="{PAD_T + 10}">'
                    f"{escape(name)}</text>")
        legend_x += 8 * len(name) + 18
    return _svg(W, H, label, body)


def bar_chart(bars: Sequence[tuple[str, float, str]], *, unit: str, label: str) -> SafeString:
    """Vertical bars: (label, value, tooltip)."""
    if not bars:
        return _svg(W, H, label, [])
    y_max = _nice_max(max(v for _, v, _ in bars))
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    step = plot_w / len(bars)
    every = max(1, math.ceil(len(bars) / 8))
    ticks = [(PAD_L + step * (i + 0.5), text) for i, (text, _, _) in enumerate(bars)
             if i % every == 0]
    body = _axes(y_max, unit, ticks)
    for i, (_, value, tip) in enumerate(bars):
        h = plot_h * min(value, y_max) / y_max
        x = PAD_L + step * i + step * 0.1
        body.append(f'<path class="pm-bar" d="M{x:.1f},{PAD_T + plot_h:.1f} v{-h:.1f} '
                    f'h{step * 0.8:.1f} v{h:.1f} z"><title>{escape(tip)}</title></path>')
    return _svg(W, H, label, body)


def gauge(score: float | None, *, label: str) -> SafeString:
    """A half-circle gauge for a 0-100 score, coloured by band (90+ good, 50+ fair)."""
    width, height, r, cx, cy = 220, 130, 90, 110, 110
    body = [f'<path class="pm-gauge-track" d="M{cx - r},{cy} A{r},{r} 0 0 1 {cx + r},{cy}"/>']
    if score is not None:
        value = max(0.0, min(100.0, score))
        angle = math.pi * (1 - value / 100)
        x, y = cx + r * math.cos(angle), cy - r * math.sin(angle)
        band = "good" if value >= 90 else "fair" if value >= 50 else "poor"
        body.append(f'<path class="pm-gauge-value pm-{band}" '
                    f'd="M{cx - r},{cy} A{r},{r} 0 0 1 {x:.2f},{y:.2f}">'
                    f"<title>{escape(label)}: {value:.0f} / 100</title></path>")
        body.append(f'<text class="pm-gauge-text" x="{cx}" y="{cy - 10}" '
                    f'text-anchor="middle">{value:.0f}</text>')
    else:
        body.append(f'<text class="pm-gauge-text pm-muted" x="{cx}" y="{cy - 10}" '
                    f'text-anchor="middle">–</text>')
    body.append(f'<text class="pm-tick" x="{cx - r}" y="{cy + 14}" text-anchor="middle">0</text>')
    body.append(f'<text class="pm-tick" x="{cx + r}" y="{cy + 14}" '
                f'text-anchor="middle">100</text>')
    return _svg(width, height, label, body)


def funnel(bars: Sequence[tuple[str, float, str]], *, label: str) -> SafeString:
    """A compact horizontal funnel: one bar per step, width = journeys that reached it."""
    width, row = 220, 12
    height = row * len(bars) + 2
    top = max((v for _, v, _ in bars), default=0.0) or 1.0
    body = []
    for i, (_, value, tip) in enumerate(bars):
        w = max(1.0, (width - 2) * value / top) if value else 0.0
        body.append(f'<path class="pm-bar" d="M1,{i * row + 1} h{w:.1f} v{row - 3} h{-w:.1f} z">'
                    f"<title>{escape(tip)}</title></path>")
    return _svg(width, height, label, body)
