"""The one settings accessor of perfmonitor.

Every setting lives in the ``PERFMONITOR`` dict of the host's settings. Values are
read through ``perfmonitor.conf.settings`` (attribute access, upper-case names),
merged over the documented defaults below, and reset on ``setting_changed`` so
``override_settings`` works in tests.

Each domain adds its keys to ``DEFAULTS`` with a type and a one-line doc;
``perfmonitor.checks`` validates every key against its type (``perfmonitor.E006``),
its optional ``minimum`` / ``maximum`` / ``items`` (``perfmonitor.E007``) and
rejects unknown keys (``perfmonitor.E005``).
"""

from __future__ import annotations

import os
import threading
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
    minimum: float | None = None  # inclusive lower bound, checked as perfmonitor.E007
    maximum: float | None = None  # inclusive upper bound
    items: tuple[type, ...] | None = None  # type of list items / dict values


_NUM = (int, float)

DEFAULTS: dict[str, Setting] = {
    # -- capture ---------------------------------------------------------------
    "ENABLED": Setting(True, (bool,), "Master switch for server-side capture (requests, queries, "
                       "tasks)."),
    "SAMPLE_RATE": Setting(
        0.1, _NUM, "Share of requests and tasks whose full detail row is stored (0..1). "
        "Slow, failed and N+1 requests are always stored; rollups always see every request.",
        minimum=0, maximum=1),
    "FLUSH_INTERVAL": Setting(1.0, _NUM, "Seconds between background flushes; also the base of "
                              "the retry backoff after a failed flush.", minimum=0.01),
    "BACKGROUND_FLUSH": Setting(True, (bool,), "Run the flusher thread. Off only in tests that "
                                "flush explicitly with perfmonitor.capture.buffer.flush_now()."),
    "SHARED_WRITER": Setting(True, (bool,), "The background flushers of a site's processes on "
                             "one host elect one of them to write the others' requests and "
                             "queries with its own: one flush per host instead of one per "
                             "process (Linux; see perfmonitor.capture.sharing)."),
    "FLUSH_SYNCHRONOUS_COMMIT": Setting(False, (bool,), "PostgreSQL: make the flusher's own "
                                        "connection wait for each commit to reach disk. Off: "
                                        "it commits asynchronously (synchronous_commit off)."),
    "BATCH_SIZE": Setting(1000, (int,), "Buffered records that wake the flusher before its "
                          "interval; one write takes at most ten times this many.", minimum=1),
    "BUFFER_SIZE": Setting(20000, (int,), "Records held in memory per process (waiting or being "
                           "retried); beyond it new records are dropped and counted.", minimum=1),
    "SLOW_API_MS": Setting(2000, _NUM, "A request (or browser API call) slower than this is slow "
                           "(the original design's slowAPI).", minimum=0),
    "SLOW_QUERY_MS": Setting(500, _NUM, "A SQL query slower than this is slow (slowQuery).",
                             minimum=0),
    "SLOW_RENDER_MS": Setting(50, _NUM, "A component render slower than this is slow (slowRender).",
                              minimum=0),
    "HIGH_ERROR_RATE": Setting(5.0, _NUM, "Error rate in percent considered high (highErrorRate).",
                               minimum=0, maximum=100),
    "LOW_PERFORMANCE_SCORE": Setting(70, _NUM, "Overall score below this is low "
                                     "(lowPerformanceScore).", minimum=0, maximum=100),
    "BUNDLE_SIZE_BYTES": Setting(2 * 1024 * 1024, (int,), "JS + CSS transfer size per page above "
                                 "which a bundle is large.", minimum=1),
    "N_PLUS_ONE_THRESHOLD": Setting(5, (int,), "Same query fingerprint this many times in one "
                                    "request is an N+1.", minimum=2),
    "MAX_QUERY_DETAILS_PER_REQUEST": Setting(20, (int,), "Cap on raw query detail rows (slow "
                                             "queries, N+1 hot spots) kept per request.",
                                             minimum=0),
    "MAX_QUERIES_TRACKED_PER_REQUEST": Setting(2000, (int,), "Individual query timings kept in "
                                               "memory per request; beyond it they are summed per "
                                               "statement.", minimum=1),
    "IGNORE_PATHS": Setting(["/static/", "/media/", "/favicon.ico"], (list, tuple),
                            "Path prefixes that are not captured (neither the request nor its "
                            "queries).", items=(str,)),
    "URL_QUERY_ALLOWLIST": Setting([], (list, tuple), "Query-string parameters kept on stored URLs;"
                                   " every other parameter and the fragment are removed.",
                                   items=(str,)),
    "APDEX_T_MS": Setting(500, _NUM, "Default Apdex T for server routes, in ms.", minimum=1),
    "APDEX_T_BY_ROUTE": Setting({}, (dict,), "Per-route Apdex T overrides, {route: ms}.",
                                items=_NUM),
    # -- retention -------------------------------------------------------------
    "RAW_RETENTION_DAYS": Setting(7, (int,), "Days raw rows (and health rows of stopped processes) "
                                  "are kept.", minimum=1),
    "MINUTE_ROLLUP_RETENTION_DAYS": Setting(14, (int,), "Days minute rollups are kept.", minimum=1),
    "HOUR_ROLLUP_RETENTION_DAYS": Setting(400, (int,), "Days hourly rollups are kept.", minimum=1),
    "PRUNE_BATCH_SIZE": Setting(5000, (int,), "Rows deleted per statement when pruning.",
                                minimum=1),
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
    "COMPACTION_GRACE_SECONDS": Setting(30, (int,), "A minute or hour is compacted this many "
                                        "seconds after it ends (rows later than that are folded "
                                        "in as late rows)."),
    "REGRESSION_THRESHOLD_PERCENT": Setting(20, _NUM, "A p95 or error rate this much worse than "
                                            "the previous equal window is a regression insight."),
    "IMPACT_MIN_SAMPLE": Setting(30, (int,), "Journeys a bucket needs before the business-impact "
                                 "analysis states its completion rate."),
    "IMPACT_MAX_ROWS": Setting(20000, (int,), "Newest journeys (and their sessions' sampled rows) "
                               "read by the business-impact analysis."),
    # -- journeys ----------------------------------------------------------------
    "JOURNEY_TYPES": Setting({}, (dict,), "Extra or overridden journey types."),
    "JOURNEY_DEFAULT_TIMEOUT_MS": Setting(3_600_000, _NUM, "Timeout of in-progress journeys whose "
                                          "type is no longer defined, in ms."),
    "JOURNEY_CLEANUP_MAX_ROWS": Setting(5000, (int,), "Stuck journeys abandoned per cleanup run; "
                                        "the rest wait for the next run."),
    "JOURNEY_ANALYSIS_MAX_ROWS": Setting(20000, (int,), "Newest journeys of a window read for a "
                                         "funnel; beyond it the funnel is a sample (and says so)."),
    # -- alerting / live -------------------------------------------------------
    "LIVE_UPDATES": Setting(True, (bool,), "Publish live updates to the channel layer."),
    "ALERT_GROUP_WAIT": Setting(30, (int,), "Seconds a new alert waits before its first "
                                "notification (Alertmanager group_wait); per-rule override."),
    "ALERT_GROUP_INTERVAL": Setting(300, (int,), "Minimum seconds between two notifications of "
                                    "one alert when it changes (group_interval)."),
    "ALERT_REPEAT_INTERVAL": Setting(4 * 3600, (int,), "Seconds after which an unacknowledged "
                                     "firing alert is notified again (repeat_interval)."),
    "ALERT_NOTIFY_MAX_ATTEMPTS": Setting(6, (int,), "Delivery attempts per notification before "
                                         "it is marked failed."),
    "ALERT_NOTIFY_BACKOFF_SECONDS": Setting(10.0, _NUM, "First retry delay; doubles per attempt "
                                            "(with jitter) up to ALERT_NOTIFY_BACKOFF_MAX."),
    "ALERT_NOTIFY_BACKOFF_MAX": Setting(600.0, _NUM, "Cap on the retry delay, in seconds."),
    "ALERT_NOTIFY_TIMEOUT": Setting(10.0, _NUM, "HTTP timeout of one delivery attempt, seconds."),
    "ALERT_SELF_ALERT_FAILURES": Setting(3, (int,), "Consecutive failed attempts on one channel "
                                         "that raise a self-alert (to the in-app channels)."),
    "ALERT_SMS_BACKEND": Setting("perfmonitor.alerts.notifiers.sms.HttpSmsBackend", (str,),
                                 "Import path of the SMS backend class (send(numbers, text, "
                                 "idempotency_key) -> DeliveryResult)."),
    "ALERT_SMS_API_URL": Setting(None, (str,), "URL the default SMS backend POSTs JSON "
                                 "{to, from, body} to.", nullable=True),
    "ALERT_SMS_API_TOKEN": Setting(None, (str,), "Bearer token of the SMS HTTP API.",
                                   nullable=True),
    "ALERT_SMS_FROM": Setting("", (str,), "Sender id or number of alert SMS."),
    "ALERT_WEBHOOK_SECRET": Setting(None, (str,), "Default Standard Webhooks signing secret "
                                    "(whsec_<base64>) for webhook channels without their own.",
                                    nullable=True),
    "ALERT_EMAIL_FROM": Setting(None, (str,), "From address of alert emails (default: "
                                "DEFAULT_FROM_EMAIL).", nullable=True),
    "ALERT_EXTERNAL_URL": Setting("", (str,), "Base URL of this site (https://lms.example.com), "
                                  "used for links in notifications."),
    "ALERT_EVALUATION_RETENTION_DAYS": Setting(3, (int,), "Days evaluation claim rows are kept."),
    "ALERT_NOTIFICATION_RETENTION_DAYS": Setting(90, (int,), "Days sent, failed and cancelled "
                                                 "notifications (with their delivery log) and "
                                                 "in-app notifications are kept."),
    # -- dashboard ---------------------------------------------------------------
    "DASHBOARD_POLL_SECONDS": Setting(30, _NUM, "Seconds between panel refreshes when the "
                                      "dashboard has no live connection (polling fallback)."),
    "DASHBOARD_MIN_REFRESH_SECONDS": Setting(5, _NUM, "A panel refreshes on live metrics "
                                             "updates at most this often, and each process "
                                             "announces new rows at most this often; alert "
                                             "changes show at once."),
}


class PerfmonitorSettings:
    """Attribute access to the merged settings.

    Loaded values are stored in the instance ``__dict__``, so after the first
    read an access is a plain attribute lookup (it sits on the request path);
    ``reload()`` drops them and the next access loads again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0

    def _load(self) -> dict[str, Any]:
        generation = self._generation
        user = getattr(django_settings, SETTINGS_NAME, None) or {}
        merged = {name: setting.default for name, setting in DEFAULTS.items()}
        if isinstance(user, dict):
            merged.update({k: v for k, v in user.items() if k in DEFAULTS})
        with self._lock:
            # A reload() that ran meanwhile wins: never store values read before it.
            if generation == self._generation:
                self.__dict__.update(merged)
        return merged

    def __getattr__(self, name: str) -> Any:
        # Only reached when the value is not loaded yet (or the name is unknown).
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Unknown perfmonitor setting {name!r}")
        return self._load()[name]

    def user_settings(self) -> dict[str, Any]:
        user = getattr(django_settings, SETTINGS_NAME, None)
        return user if isinstance(user, dict) else {}

    def reload(self) -> None:
        with self._lock:
            self._generation += 1
            for name in DEFAULTS:
                self.__dict__.pop(name, None)
            request_path.loaded = False

    def import_object(self, name: str) -> Any:
        """Resolve an import-string setting with an error that names the setting."""
        path = getattr(self, name)
        try:
            return import_string(path)
        except ImportError as exc:
            raise ImportError(
                f"PERFMONITOR[{name!r}] = {path!r} could not be imported: {exc}") from exc


settings = PerfmonitorSettings()


class RequestPathSettings:
    """The settings every request reads, as the slots of one small object.

    ``settings.NAME`` is a generic attribute lookup (``PerfmonitorSettings`` has a
    ``__getattr__``, which the interpreter does not specialize): the type's MRO and
    a dict of every setting, a few cache lines each when a request starts with cold
    caches, as it does on a busy host. A slot read is one. Loaded on first use and
    again after every :meth:`PerfmonitorSettings.reload`::

        hot = request_path if request_path.loaded else request_path.load()
    """

    __slots__ = ("loaded", "enabled", "ignore_prefixes", "query_limit", "buffer_size",
                 "batch_size")

    def __init__(self) -> None:
        self.loaded = False

    def load(self) -> RequestPathSettings:
        generation = settings._generation
        self.enabled = bool(settings.ENABLED)
        self.ignore_prefixes = tuple(settings.IGNORE_PATHS)  # as str.startswith takes them
        self.query_limit = settings.MAX_QUERIES_TRACKED_PER_REQUEST
        self.buffer_size = settings.BUFFER_SIZE
        self.batch_size = settings.BATCH_SIZE
        # A reload() that ran meanwhile wins: load again at the next use.
        self.loaded = generation == settings._generation
        return self


request_path = RequestPathSettings()


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time would stay held in the child.
    settings._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def reload_settings(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget the cached values of PERFMONITOR."""
    if setting == SETTINGS_NAME:
        settings.reload()
