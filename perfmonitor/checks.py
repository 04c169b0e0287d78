"""System checks for a broken install or configuration. Ids are stable.

perfmonitor.E001  middleware missing (while ENABLED)
perfmonitor.E002  middleware listed more than once
perfmonitor.W003  middleware placed below middleware whose queries it would miss
perfmonitor.E004  PERFMONITOR is not a dict
perfmonitor.E005  unknown PERFMONITOR key (with a did-you-mean hint)
perfmonitor.E006  PERFMONITOR value of the wrong type
perfmonitor.E007  PERFMONITOR value out of range
perfmonitor.E008  COLLECT_THROTTLE_RATE is not "<count>/<period>" (it would silently not throttle)
perfmonitor.E009  ALLOWED_ORIGINS holds something that is not an origin ("https://host[:port]")
perfmonitor.W010  (check --deploy) throttling counts in a per-process or dummy default cache
perfmonitor.W011  (check --deploy) the compiled request path was not built: capture runs in Python

Domain packages write their own check functions (``perfmonitor.journeys.checks``:
perfmonitor.E020, a JOURNEY_TYPES definition that is not valid); they are
registered at the bottom of this module.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from perfmonitor.beacons.clients import parse_rate
from perfmonitor.conf import DEFAULTS, SETTINGS_NAME, Setting

MIDDLEWARE_PATH = "perfmonitor.capture.middleware.PerformanceMiddleware"
# Middleware that may run queries (sessions, auth, messages): ours must wrap them.
MUST_COME_BEFORE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
    "django.contrib.redirects.middleware.RedirectFallbackMiddleware",
)

# Ranges of keys whose DEFAULTS entries declare none (minimum, maximum).
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "CLIENT_SAMPLE_RATE": (0, 1),
    "COLLECT_MAX_EVENTS": (1, None),
    "COLLECT_MAX_BYTES": (1, None),
}


def _is_ours(path: Any) -> bool:
    """Our middleware, or a host's subclass of it."""
    if path == MIDDLEWARE_PATH:
        return True
    if not isinstance(path, str) or "." not in path:
        return False
    try:
        from perfmonitor.capture.middleware import PerformanceMiddleware

        cls = import_string(path)
        return isinstance(cls, type) and issubclass(cls, PerformanceMiddleware)
    except Exception:  # Django reports middleware that cannot be imported
        return False


@register(Tags.compatibility)
def check_middleware(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    middleware = list(getattr(django_settings, "MIDDLEWARE", None) or [])
    positions = [i for i, path in enumerate(middleware) if _is_ours(path)]
    if not positions:
        user = getattr(django_settings, SETTINGS_NAME, None)
        if isinstance(user, dict) and user.get("ENABLED") is False:
            return []
        return [Error(
            f"{MIDDLEWARE_PATH} is not in MIDDLEWARE, so no request is measured.",
            hint=f"Add {MIDDLEWARE_PATH!r} at the top of MIDDLEWARE "
                 "(right after SecurityMiddleware if you use it).",
            id="perfmonitor.E001",
        )]
    if len(positions) > 1:
        return [Error(
            f"{MIDDLEWARE_PATH} is listed {len(positions)} times in MIDDLEWARE; every request "
            "would be counted more than once.",
            hint="Keep one entry, at the top of MIDDLEWARE.",
            id="perfmonitor.E002",
        )]
    above = [m for m in middleware[:positions[0]] if m in MUST_COME_BEFORE]
    if above:
        return [Warning(
            f"{MIDDLEWARE_PATH} comes after {', '.join(above)}; the queries and time "
            "spent there are not measured.",
            hint="Move it to the top of MIDDLEWARE (right after SecurityMiddleware).",
            id="perfmonitor.W003",
        )]
    return []


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def _has_type(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False  # True is an int to Python, not to a setting that wants a number
    return isinstance(value, types)


@register(Tags.compatibility)
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    user = getattr(django_settings, SETTINGS_NAME, None)
    if user is None:
        return []
    if not isinstance(user, dict):
        return [Error(f"{SETTINGS_NAME} must be a dict, not {type(user).__name__}.",
                      hint=f"Set {SETTINGS_NAME} = {{...}} in your settings.",
                      id="perfmonitor.E004")]
    errors: list[CheckMessage] = []
    for key, value in user.items():
        spec = DEFAULTS.get(key)
        if spec is None:
            close = difflib.get_close_matches(str(key).upper(), DEFAULTS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else \
                "See the settings reference in the README."
            errors.append(Error(f"{SETTINGS_NAME}[{key!r}] is not a perfmonitor setting.",
                                hint=hint, id="perfmonitor.E005"))
            continue
        if value is None and spec.nullable:
            continue
        error = _type_error(key, value, spec)
        if error is not None:
            errors.append(error)
            continue
        errors.extend(_range_errors(key, value, spec))
    return errors


def _type_error(key: str, value: Any, spec: Setting) -> CheckMessage | None:
    if not _has_type(value, spec.types):
        return Error(
            f"{SETTINGS_NAME}[{key!r}] must be {_type_names(spec.types)}, "
            f"not {type(value).__name__}.",
            hint=f"{spec.doc} Default: {spec.default!r}.", id="perfmonitor.E006")
    if spec.items is not None:
        members = value.values() if isinstance(value, dict) else value
        wrong = [m for m in members if not _has_type(m, spec.items)]
        if wrong:
            return Error(
                f"{SETTINGS_NAME}[{key!r}] must hold {_type_names(spec.items)} values, "
                f"not {type(wrong[0]).__name__} ({wrong[0]!r}).",
                hint=f"{spec.doc} Default: {spec.default!r}.", id="perfmonitor.E006")
    return None


def _range_errors(key: str, value: Any, spec: Setting) -> list[CheckMessage]:
    low, high = spec.minimum, spec.maximum
    if low is None and high is None:
        low, high = _RANGES.get(key, (None, None))
    if isinstance(value, int | float) and (
            (low is not None and value < low) or (high is not None and value > high)):
        if low is not None and high is not None:
            wanted = f"between {low} and {high}"
        elif low is not None:
            wanted = f"at least {low}"
        else:
            wanted = f"at most {high}"
        return [Error(f"{SETTINGS_NAME}[{key!r}] must be {wanted}, not {value!r}.",
                      hint=f"{spec.doc} Default: {spec.default!r}.", id="perfmonitor.E007")]
    return []


# -- the collect API ---------------------------------------------------------------------------
_PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "per process",
    "django.core.cache.backends.dummy.DummyCache": "a dummy that stores nothing",
}


def _user_value(key: str) -> Any:
    user = getattr(django_settings, SETTINGS_NAME, None)
    return user.get(key, DEFAULTS[key].default) if isinstance(user, dict) else \
        DEFAULTS[key].default


@register(Tags.compatibility)
def check_collect(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E008 / E009: collect API settings whose mistakes would otherwise go unnoticed."""
    errors: list[CheckMessage] = []
    rate = _user_value("COLLECT_THROTTLE_RATE")
    if isinstance(rate, str) and rate and (parse_rate(rate) is None or parse_rate(rate)[0] < 0):
        errors.append(Error(
            f"{SETTINGS_NAME}['COLLECT_THROTTLE_RATE'] = {rate!r} is not a rate, so beacons "
            "are not throttled at all.",
            hint="Write '<count>/<period>' with a period of s, m, h or d (second, minute, "
                 "hour, day), e.g. '600/min'; '' turns throttling off.",
            id="perfmonitor.E008"))
    origins = _user_value("ALLOWED_ORIGINS")
    if isinstance(origins, list | tuple):
        for origin in origins:
            problem = _origin_problem(origin)
            if problem:
                errors.append(Error(
                    f"{SETTINGS_NAME}['ALLOWED_ORIGINS'] holds {origin!r}, {problem}; beacons "
                    "from that site would be refused with 403.",
                    hint="List origins as a browser sends them in the Origin header: scheme, "
                         "host and port only, e.g. 'https://lms.example.com' or "
                         "'http://localhost:8000'. An empty list allows every origin.",
                    id="perfmonitor.E009"))
    return errors


def _origin_problem(origin: Any) -> str:
    """Why ``origin`` is not an origin, or '' when it is one."""
    if not isinstance(origin, str):
        return f"a {type(origin).__name__}, not a string"
    try:
        parts = urlsplit(origin.strip())
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return "which is not a URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "which does not start with http:// or https://"
    if not parts.hostname or "*" in parts.netloc:
        return "which has no host (wildcards are not supported)"
    if "@" in parts.netloc:
        return "which has a user name in it"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "which has a path; an origin ends after the host and port"
    return ""


@register(Tags.caches, deploy=True)
def check_collect_throttle_cache(app_configs: Sequence[Any] | None = None,
                                 **kwargs: Any) -> list[CheckMessage]:
    """W010 (``check --deploy``): the throttle counts in CACHES['default']; a per-process
    cache gives a client the rate once per web process, a dummy one never throttles."""
    parsed = parse_rate(_user_value("COLLECT_THROTTLE_RATE"))
    caches = getattr(django_settings, "CACHES", None) or {}
    backend = (caches.get("default") or {}).get("BACKEND", "")
    kind = _PER_PROCESS_CACHES.get(backend)
    if parsed is None or kind is None:
        return []
    return [Warning(
        f"COLLECT_THROTTLE_RATE is counted in CACHES['default'], which is {backend} "
        f"({kind}): with several web processes each one counts on its own, so a client "
        "may send the rate once per process" + (" (and a dummy cache never throttles)."
                                               if "dummy" in kind else "."),
        hint="Use a cache that all web processes share as CACHES['default'] (Redis or "
             "Memcached: the throttle uses one atomic increment per batch). A site served "
             "by one process may silence perfmonitor.W010.",
        id="perfmonitor.W010")]


@register(Tags.compatibility, deploy=True)
def check_compiled_request_path(app_configs: Sequence[Any] | None = None,
                                **kwargs: Any) -> list[CheckMessage]:
    """W011 (``check --deploy``): perfmonitor.capture._speedups did not build or import,
    so every request and query runs the Python capture code, which costs more CPU."""
    from perfmonitor.capture import query_hook

    if query_hook.IMPLEMENTATION == "compiled" or query_hook.PURE_PYTHON_REQUESTED:
        return []
    return [Warning(
        "perfmonitor's compiled request path (perfmonitor.capture._speedups) is not "
        "installed, so capture runs in Python, which costs every request and query more "
        "CPU than the compiled path.",
        hint="Install a wheel built for this platform, or reinstall with a C compiler and "
             "the Python headers present (pip install --force-reinstall --no-binary "
             "django-perfmonitor django-perfmonitor). Set PERFMONITOR_PURE_PYTHON=1 if "
             "the Python path is intended.",
        id="perfmonitor.W011")]


def _register_domain_checks() -> None:
    from perfmonitor.journeys.checks import check_journey_types

    register(check_journey_types, Tags.compatibility)


_register_domain_checks()
