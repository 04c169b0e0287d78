"""The SVG chart helpers draw what they are given, escaped, with tooltips and no script."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from perfmonitor.analytics.svg import Series, bar_chart, gauge, line_chart, nice_ticks

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def test_line_chart_has_axes_points_with_tooltips_and_breaks_on_gaps():
    t0 = datetime(2026, 5, 1, 10, tzinfo=UTC)
    points = [(t0 + timedelta(hours=i), v) for i, v in enumerate([120, 180, None, 90, 60])]
    root = parse(line_chart([Series("p95 <route>", points)], title="Latency", unit="ms"))
    assert root.find(f"{NS}title").text == "Latency"
    circles = root.findall(f"{NS}circle")
    assert len(circles) == 4
    assert circles[1].find(f"{NS}title").text == "p95 <route>: 180 ms at 11:00"
    assert len(root.findall(f"{NS}polyline")) == 2  # the None splits the line
    labels = [t.text for t in root.findall(f"{NS}text")]
    assert "0 ms" in labels and "200 ms" in labels and "10:00" in labels
    assert "<script" not in line_chart([Series("x", points)])


def test_empty_charts_say_so():
    assert "No data in this window" in line_chart([Series("p95", [])])
    assert "No data in this window" in bar_chart([])
    assert "no data" in gauge(None, label="Score")


def test_bar_chart_marks_bars_over_the_budget_line():
    root = parse(bar_chart([("/app/", 2500.0), ("/<b>/", 800.0)], unit="KiB", limit=2000.0))
    rects = root.findall(f"{NS}rect")
    assert rects[0].get("fill").startswith("var(--pm-bad")
    assert not rects[1].get("fill").startswith("var(--pm-bad")
    assert rects[1].find(f"{NS}title").text == "/<b>/: 800 KiB"
    assert root.find(f"{NS}line").find(f"{NS}title").text == "budget 2000 KiB"


def test_gauge_colours_by_lighthouse_band():
    assert "--pm-good" in gauge(95, label="Score")
    assert "--pm-warn" in gauge(70, label="Score")
    assert "--pm-bad" in gauge(30, label="Score")
    assert parse(gauge(87.4, label="Score")).find(f"{NS}title").text == "Score"


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 187) == [0, 50, 100, 150, 200]
    ticks = nice_ticks(0.01, 0.27)
    assert ticks[0] <= 0.01 and ticks[-1] >= 0.27
