"""The overview's panels: what each shows, which live topics refresh it, its data.

A :class:`Board` renders panels for one set of controls; the overview page
renders all of them, the htmx partial endpoint one. A panel that fails shows
its error instead of taking the whole page down with it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from perfmonitor.analytics import query
from perfmonitor.capture.context import capture_suppressed
from perfmonitor.dashboard import data
from perfmonitor.dashboard.controls import Controls

logger = logging.getLogger("perfmonitor")


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """The dashboard's own reads: not captured as the host's queries (they would show up
    as N+1 hot spots of the admin), and the rollup watermarks read once per render."""
    with capture_suppressed(), query.pinned_marks():
        yield


@dataclass(frozen=True)
class PanelSpec:
    name: str
    title: str
    topics: tuple[str, ...]
    build: Callable[[Board], dict[str, Any]]
    wide: bool = False
    # Loaded by the page right after it arrives (htmx, on load) instead of with it: the
    # panels whose queries are not part of the overview's summary set and cost the most.
    deferred: bool = False

    @property
    def template(self) -> str:
        return f"perfmonitor/dashboard/partials/{self.name}.html"


PANELS: dict[str, PanelSpec] = {spec.name: spec for spec in (
    PanelSpec("score", "Performance score", ("metrics", "journeys"), data.score),
    PanelSpec("cards", "Overview", ("metrics", "alerts", "journeys"), data.cards, wide=True),
    PanelSpec("vitals", "Web Vitals (p75)", ("metrics",), data.vitals, wide=True),
    PanelSpec("alerts", "Open alerts", ("alerts",), data.alerts, wide=True),
    PanelSpec("trends", "Trends", ("metrics",), data.trends, wide=True),
    PanelSpec("routes", "Top routes", ("metrics",), data.routes, wide=True),
    PanelSpec("journeys", "Journeys", ("journeys", "metrics"), data.journeys, wide=True,
              deferred=True),
    PanelSpec("bundles", "Bundle sizes", ("metrics",), data.bundles, wide=True, deferred=True),
    PanelSpec("insights", "What to fix first", ("metrics", "alerts"), data.insights,
              wide=True, deferred=True),
)}


class Board:
    """Shared state of one dashboard render: controls, window, shared summaries."""

    def __init__(self, controls: Controls, *, request: HttpRequest | None = None,
                 site_name: str = "admin") -> None:
        self.controls = controls
        self.window = controls.window()
        self.request = request
        self.site_name = site_name

        self._summary: dict[str, Any] | None = None

    def part(self, name: str) -> Any:
        """One part of the overview query set: from the whole set when it was computed for
        this render, else on its own (a partial refresh needs only its panel's part)."""
        if self._summary is not None:
            return self._summary[name]
        return data.PARTS[name](self)

    def url(self, name: str, *args: Any, query: str | None = None) -> str:
        path = reverse(f"admin:perfmonitor_dashboard_{name}", args=args,
                       current_app=self.site_name)
        qs = self.controls.query_string() if query is None else query
        return f"{path}?{qs}" if qs else path

    def render(self, name: str, notice: str = "", defer: bool = False) -> dict[str, Any]:
        spec = PANELS[name]
        panel: dict[str, Any] = {
            "name": spec.name, "title": spec.title, "template": spec.template,
            "topics": " ".join(spec.topics), "wide": spec.wide, "notice": notice,
            "url": self.url("panel", spec.name), "rendered_at": timezone.now(),
            "error": "", "data": {}, "deferred": defer,
        }
        if defer:
            return panel
        try:
            panel["data"] = spec.build(self)
        except Exception as exc:  # one broken panel must not take the page down
            logger.exception("perfmonitor: dashboard panel %s failed", name)
            panel["error"] = f"{type(exc).__name__}: {exc}"[:300]
        return panel

    def render_all(self) -> list[dict[str, Any]]:
        try:
            self._summary = data.summary(self.window, self.controls)
        except Exception:  # each panel then asks for its own part and shows its own error
            logger.exception("perfmonitor: dashboard summary failed")
        return [self.render(name, defer=spec.deferred) for name, spec in PANELS.items()]
