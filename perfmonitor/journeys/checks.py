"""System check of the ``JOURNEY_TYPES`` setting.

perfmonitor.E020  a journey type in PERFMONITOR['JOURNEY_TYPES'] is not valid

``perfmonitor.checks`` owns the registrations; once it registers this function
(``register(check_journey_types)``) a bad definition stops ``manage.py check``
and start-up instead of failing the first request that starts a journey.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured

from perfmonitor.conf import settings
from perfmonitor.journeys.definitions import build_definitions


def check_journey_types(app_configs: Sequence[Any] | None = None,
                        **kwargs: Any) -> list[CheckMessage]:
    overrides = settings.JOURNEY_TYPES
    if not isinstance(overrides, dict):
        return []  # perfmonitor.E006 reports the wrong type
    try:
        build_definitions(overrides)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="See 'User journeys' in the README: each type needs "
                      "'steps' (names) and 'target_ms'; 'timeout_ms' is optional.",
                      id="perfmonitor.E020")]
    return []
