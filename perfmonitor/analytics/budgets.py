"""Performance budgets: configured limits checked against the rollups.

``PERFMONITOR["BUDGETS"]``::

    {
        "bundle_bytes": {"*": 2_000_000, "/checkout/": 1_000_000},   # JS + CSS transfer, p75
        "vitals_p75": {"LCP": 2500, "CLS": 0.1,                      # site-wide p75
                       "/courses/": {"LCP": 2000}},                  # or per page
        "route_p95_ms": {"*": 1000, "/courses/<int:pk>/": 300},      # server p95
    }

``"*"`` applies to every page or route that has data and no entry of its own.
A budget with no data in the window is reported as such, never as met.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfmonitor.analytics.query import SeriesStats, Window, prepare_sketches, stats
from perfmonitor.analytics.vitals import VITALS
from perfmonitor.conf import settings

KINDS = ("bundle_bytes", "vitals_p75", "route_p95_ms")


class BudgetError(ValueError):
    """The BUDGETS setting is malformed; the message says where."""


@dataclass
class BudgetCheck:
    budget: str
    target: str
    limit: float
    actual: float | None
    unit: str

    @property
    def status(self) -> str:
        if self.actual is None:
            return "no-data"
        return "exceeded" if self.actual > self.limit else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "target": self.target, "limit": self.limit,
                "actual": self.actual, "unit": self.unit, "status": self.status}


@dataclass
class BudgetReport:
    window: Window
    checks: list[BudgetCheck] = field(default_factory=list)

    @property
    def exceeded(self) -> list[BudgetCheck]:
        return [c for c in self.checks if c.status == "exceeded"]

    @property
    def missing(self) -> list[BudgetCheck]:
        return [c for c in self.checks if c.status == "no-data"]

    def as_dict(self) -> dict[str, Any]:
        return {"window": self.window.as_dict(), "configured": bool(self.checks),
                "exceeded": len(self.exceeded), "no_data": len(self.missing),
                "checks": [c.as_dict() for c in self.checks]}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BudgetError(f"BUDGETS{where} must be a non-negative number; got {value!r}")
    return float(value)


def _expand(limits: dict[str, Any], seen: list[str], where: str) -> dict[str, float]:
    """Entries for every seen target: its own limit, else the "*" default."""
    own = {k: _number(v, f"[{where!r}][{k!r}]") for k, v in limits.items()
           if k != "*" and not isinstance(v, dict)}
    default = _number(limits["*"], f"[{where!r}]['*']") if "*" in limits else None
    result = dict(own)
    if default is not None:
        for target in seen:
            result.setdefault(target, default)
    return result


def parse_budgets(config: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(config, dict):
        raise BudgetError("BUDGETS must be a dict")
    unknown = set(config) - set(KINDS)
    if unknown:
        raise BudgetError(f"unknown BUDGETS keys {sorted(unknown)}; known: {', '.join(KINDS)}")
    for key in KINDS:
        if key in config and not isinstance(config[key], dict):
            raise BudgetError(f"BUDGETS[{key!r}] must be a dict")
    return config


def check_budgets(window: Window, config: Any = None) -> BudgetReport:
    config = parse_budgets(settings.BUDGETS if config is None else config)
    report = BudgetReport(window)
    if config.get("bundle_bytes"):
        _bundles(report, window, config["bundle_bytes"])
    if config.get("vitals_p75"):
        _vitals(report, window, config["vitals_p75"])
    if config.get("route_p95_ms"):
        _routes(report, window, config["route_p95_ms"])
    return report


def _bundles(report: BudgetReport, window: Window, limits: dict[str, Any]) -> None:
    grouped = stats("resource", window=window, dimension=("js_transfer", "css_transfer"),
                    group_by=("name", "dimension"))
    prepare_sketches(grouped.values())
    sizes: dict[str, float] = {}
    for (page, _dim), s in grouped.items():
        sizes[page] = sizes.get(page, 0.0) + (s.p75 or 0.0)
    for page, limit in sorted(_expand(limits, sorted(sizes), "bundle_bytes").items()):
        report.checks.append(BudgetCheck("bundle_bytes", page, limit, sizes.get(page), "bytes"))


def _vitals(report: BudgetReport, window: Window, limits: dict[str, Any]) -> None:
    site_limits = {k: v for k, v in limits.items() if not isinstance(v, dict)}
    page_limits = {k: v for k, v in limits.items() if isinstance(v, dict)}
    for name in site_limits:
        if name not in VITALS:
            raise BudgetError(f"BUDGETS['vitals_p75'][{name!r}]: unknown vital; "
                              f"known: {', '.join(VITALS)}")
    site = stats("vital", window=window, name=list(site_limits), group_by=("name",)) \
        if site_limits else {}
    pages = stats("vital", window=window, dimension=list(page_limits),
                  group_by=("dimension", "name")) if page_limits else {}
    prepare_sketches([*site.values(), *pages.values()])
    for name, limit in sorted(site_limits.items()):
        s = site.get((name,), SeriesStats())
        report.checks.append(BudgetCheck("vitals_p75", f"site {name}",
                                         _number(limit, f"['vitals_p75'][{name!r}]"),
                                         s.p75 if s.count else None, VITALS[name].unit))
    for page, per_vital in sorted(page_limits.items()):
        for name, limit in sorted(per_vital.items()):
            if name not in VITALS:
                raise BudgetError(f"BUDGETS['vitals_p75'][{page!r}][{name!r}]: unknown vital")
            s = pages.get((page, name), SeriesStats())
            report.checks.append(BudgetCheck(
                "vitals_p75", f"{page} {name}",
                _number(limit, f"['vitals_p75'][{page!r}][{name!r}]"),
                s.p75 if s.count else None, VITALS[name].unit))


def _routes(report: BudgetReport, window: Window, limits: dict[str, Any]) -> None:
    routes = stats("request", window=window, group_by=("name",))
    prepare_sketches(routes.values())
    p95 = {key[0]: s.p95 for key, s in routes.items() if s.count}
    for route, limit in sorted(_expand(limits, sorted(p95), "route_p95_ms").items()):
        report.checks.append(BudgetCheck("route_p95_ms", route, limit, p95.get(route), "ms"))
