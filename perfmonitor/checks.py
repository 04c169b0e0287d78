"""System checks for a broken install or configuration. Ids are stable.

perfmonitor.E001  middleware missing
perfmonitor.E002  middleware listed more than once
perfmonitor.W003  middleware placed below middleware whose queries it would miss
perfmonitor.E004  PERFMONITOR is not a dict
perfmonitor.E005  unknown PERFMONITOR key (with a did-you-mean hint)
perfmonitor.E006  PERFMONITOR value of the wrong type
perfmonitor.E007  PERFMONITOR value out of range
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from perfmonitor.conf import DEFAULTS, SETTINGS_NAME

MIDDLEWARE_PATH = "perfmonitor.capture.middleware.PerformanceMiddleware"
# Middleware that may run queries (sessions, auth): ours must wrap them.
MUST_COME_BEFORE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)

_RATES = ("SAMPLE_RATE", "CLIENT_SAMPLE_RATE")
_POSITIVE = ("FLUSH_INTERVAL", "BATCH_SIZE", "BUFFER_SIZE", "N_PLUS_ONE_THRESHOLD",
             "COLLECT_MAX_EVENTS", "COLLECT_MAX_BYTES", "PRUNE_BATCH_SIZE")


@register(Tags.compatibility)
def check_middleware(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    middleware = list(getattr(django_settings, "MIDDLEWARE", None) or [])
    count = middleware.count(MIDDLEWARE_PATH)
    if count == 0:
        return [Error(
            f"{MIDDLEWARE_PATH} is not in MIDDLEWARE, so no request is measured.",
            hint=f"Add {MIDDLEWARE_PATH!r} at the top of MIDDLEWARE "
                 "(right after SecurityMiddleware if you use it).",
            id="perfmonitor.E001",
        )]
    if count > 1:
        return [Error(
            f"{MIDDLEWARE_PATH} is listed {count} times in MIDDLEWARE; every request "
            "would be counted more than once.",
            hint="Keep one entry, at the top of MIDDLEWARE.",
            id="perfmonitor.E002",
        )]
    position = middleware.index(MIDDLEWARE_PATH)
    above = [m for m in middleware[:position] if m in MUST_COME_BEFORE]
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
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else "See the settings reference in the README."
            errors.append(Error(f"{SETTINGS_NAME}[{key!r}] is not a perfmonitor setting.",
                                hint=hint, id="perfmonitor.E005"))
            continue
        if value is None and spec.nullable:
            continue
        wrong_bool = isinstance(value, bool) and bool not in spec.types
        if wrong_bool or not isinstance(value, spec.types):
            errors.append(Error(
                f"{SETTINGS_NAME}[{key!r}] must be {_type_names(spec.types)}, "
                f"not {type(value).__name__}.",
                hint=f"{spec.doc} Default: {spec.default!r}.", id="perfmonitor.E006"))
            continue
        errors.extend(_range_errors(key, value))
    return errors


def _range_errors(key: str, value: Any) -> list[CheckMessage]:
    if key in _RATES and not 0 <= value <= 1:
        return [Error(f"{SETTINGS_NAME}[{key!r}] must be between 0 and 1, not {value!r}.",
                      hint="1 keeps everything, 0.1 keeps one in ten.", id="perfmonitor.E007")]
    if key in _POSITIVE and value <= 0:
        return [Error(f"{SETTINGS_NAME}[{key!r}] must be greater than 0, not {value!r}.",
                      hint=f"Default: {DEFAULTS[key].default!r}.", id="perfmonitor.E007")]
    return []
