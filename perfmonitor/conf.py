"""The one settings accessor of perfmonitor.

Every setting lives in the ``PERFMONITOR`` dict of the host's settings. Values are
read through ``perfmonitor.conf.settings`` (attribute access, upper-case names),
merged over the documented defaults below, cached, and reset on
``setting_changed`` so ``override_settings`` works in tests.

Each domain adds its keys to ``DEFAULTS`` with a type; ``perfmonitor.checks``
validates every key against that type and rejects unknown keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.utils.module_loading import import_string

SETTINGS_NAME = "PERFMONITOR"


@dataclass(frozen=True)
class Setting:
    default: Any
    types: tuple[type, ...]
    doc: str
    nullable: bool = False


_NUM = (int, float)

DEFAULTS: dict[str, Setting] = {
    # -- capture ---------------------------------------------------------------
    "ENABLED": Setting(True, (bool,), "Master switch for server-side capture."),
    "SAMPLE_RATE": Setting(
        0.1, _NUM, "Share of requests whose full detail row is stored (0..1). "
        "Slow and failed requests are always stored; rollups always see every request."
    ),
    "FLUSH_INTERVAL": Setting(1.0, _NUM, "Seconds between background flushes."),
    "BACKGROUND_FLUSH": Setting(True, (bool,), "Run the flusher thread. Off only in tests that "
                                "flush explicitly with perfmonitor.capture.buffer.flush_now()."),
    "BATCH_SIZE": Setting(1000, (int,), "Records that trigger an early flush."),
    "BUFFER_SIZE": Setting(20000, (int,), "Records held in memory per process; beyond it new "
                           "records are dropped and counted."),
    "SLOW_API_MS": Setting(2000, _NUM, "A request (or browser API call) slower than this is slow "
                           "(the original design's slowAPI)."),
    "SLOW_QUERY_MS": Setting(500, _NUM, "A SQL query slower than this is slow (slowQuery)."),
    "SLOW_RENDER_MS": Setting(50, _NUM, "A component render slower than this is slow (slowRender)."),
    "HIGH_ERROR_RATE": Setting(5.0, _NUM, "Error rate in percent considered high (highErrorRate)."),
    "LOW_PERFORMANCE_SCORE": Setting(70, _NUM, "Overall score below this is low "
                                     "(lowPerformanceScore)."),
    "BUNDLE_SIZE_BYTES": Setting(2 * 1024 * 1024, (int,), "JS + CSS transfer size per page above "
                                 "which a bundle is large."),
    "N_PLUS_ONE_THRESHOLD": Setting(5, (int,), "Same query fingerprint this many times in one "
                                    "request is an N+1."),
    "MAX_QUERY_DETAILS_PER_REQUEST": Setting(20, (int,), "Cap on raw query detail rows (slow "
                                             "queries, N+1 hot spots) kept per request."),
    "MAX_QUERIES_TRACKED_PER_REQUEST": Setting(2000, (int,), "Individual query timings kept in "
                                               "memory per request; beyond it they are summed."),
    "IGNORE_PATHS": Setting(["/static/", "/media/", "/favicon.ico"], (list, tuple),
                            "Path prefixes that are not captured."),
    "URL_QUERY_ALLOWLIST": Setting([], (list, tuple), "Query-string parameters kept on stored URLs;"
                                   " every other parameter and the fragment are removed."),
    "APDEX_T_MS": Setting(500, _NUM, "Default Apdex T for server routes, in ms."),
    "APDEX_T_BY_ROUTE": Setting({}, (dict,), "Per-route Apdex T overrides, {route: ms}."),
    # -- retention -------------------------------------------------------------
    "RAW_RETENTION_DAYS": Setting(7, (int,), "Days raw rows are kept."),
    "MINUTE_ROLLUP_RETENTION_DAYS": Setting(14, (int,), "Days minute rollups are kept."),
    "HOUR_ROLLUP_RETENTION_DAYS": Setting(400, (int,), "Days hourly rollups are kept."),
    "PRUNE_BATCH_SIZE": Setting(5000, (int,), "Rows deleted per statement when pruning."),
    # -- collect API -------------------------------------------------------------
    "ALLOWED_ORIGINS": Setting([], (list, tuple), "Origins allowed to post beacons; empty allows "
                               "any origin."),
    "WRITE_KEY": Setting(None, (str,), "Optional public write key beacons must carry.",
                         nullable=True),
    "COLLECT_MAX_EVENTS": Setting(100, (int,), "Events per beacon batch."),
    "COLLECT_MAX_BYTES": Setting(64 * 1024, (int,), "Bytes per beacon batch."),
    "COLLECT_THROTTLE_RATE": Setting("600/min", (str,), "Beacon batches per client (DRF rate)."),
    "CLIENT_SAMPLE_RATE": Setting(1.0, _NUM, "Share of browser sessions that report (0..1)."),
    # -- analytics -------------------------------------------------------------
    "VITAL_WEIGHTS": Setting({"LCP": 30, "INP": 30, "CLS": 15, "FCP": 15, "TTFB": 10}, (dict,),
                             "Weights of the front-end score."),
    "SCORE_WEIGHTS": Setting({"frontend": 40, "server": 40, "journeys": 20}, (dict,),
                             "Weights of the overall performance score."),
    "BUDGETS": Setting({}, (dict,), "Performance budgets checked by perfmonitor_budget."),
    "METRICS_BEARER_TOKEN": Setting(None, (str,), "Bearer token for the Prometheus endpoint.",
                                    nullable=True),
    # -- journeys ----------------------------------------------------------------
    "JOURNEY_TYPES": Setting({}, (dict,), "Extra or overridden journey types."),
    # -- alerting / live -------------------------------------------------------
    "LIVE_UPDATES": Setting(True, (bool,), "Publish live updates to the channel layer."),
}


class PerfmonitorSettings:
    """Attribute access to the merged settings, cached until settings change."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        user = getattr(django_settings, SETTINGS_NAME, None) or {}
        merged = {name: setting.default for name, setting in DEFAULTS.items()}
        if isinstance(user, dict):
            merged.update({k: v for k, v in user.items() if k in DEFAULTS})
        self._cache = merged
        return merged

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self._cache if self._cache is not None else self._load()
        try:
            return values[name]
        except KeyError:
            raise AttributeError(f"Unknown perfmonitor setting {name!r}") from None

    def user_settings(self) -> dict[str, Any]:
        user = getattr(django_settings, SETTINGS_NAME, None)
        return user if isinstance(user, dict) else {}

    def reload(self) -> None:
        self._cache = None

    def import_object(self, name: str) -> Any:
        """Resolve an import-string setting with an error that names the setting."""
        path = getattr(self, name)
        try:
            return import_string(path)
        except ImportError as exc:
            raise ImportError(f"PERFMONITOR[{name!r}] = {path!r} could not be imported: {exc}")


settings = PerfmonitorSettings()


def reload_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        settings.reload()
