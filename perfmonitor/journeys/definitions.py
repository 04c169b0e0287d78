"""Journey types: the seven built-in LMS journeys and the project's own.

A journey type has an ordered list of steps, a time target for the whole
journey (the Apdex T of its score) and a timeout after which an unfinished
journey is marked abandoned. A step may carry its own target; a step without
one gets an equal share of the journey's target.

Projects add types or override built-in fields through the ``JOURNEY_TYPES``
setting::

    PERFMONITOR = {
        "JOURNEY_TYPES": {
            # a new type
            "course_enrolment": {
                "label": "Course enrolment",
                "steps": ["catalogue_view", {"name": "enrolled", "target_ms": 2000}],
                "target_ms": 30_000,
                "timeout_ms": 1_800_000,
            },
            # an override: only the given fields change
            "login": {"target_ms": 8000},
            # remove a built-in type
            "teacher_onboarding": None,
        },
    }

Definitions are rebuilt when settings change (``override_settings`` works).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from perfmonitor.conf import settings

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
SECOND = 1000
MINUTE = 60 * SECOND


class JourneyError(Exception):
    """Base class of every error the journeys API raises."""


class UnknownJourneyType(JourneyError):
    def __init__(self, journey_type: str) -> None:
        known = ", ".join(sorted(journey_types()))
        super().__init__(f"Unknown journey type {journey_type!r}; known types: {known}.")
        self.journey_type = journey_type


class UnknownStep(JourneyError):
    def __init__(self, journey_type: str, step: str, steps: Iterable[str]) -> None:
        super().__init__(f"{step!r} is not a step of the {journey_type!r} journey; "
                         f"its steps are: {', '.join(steps)}.")
        self.journey_type = journey_type
        self.step = step


@dataclass(frozen=True)
class StepDefinition:
    name: str
    label: str
    target_ms: float | None = None  # None: an equal share of the journey's target


@dataclass(frozen=True)
class JourneyDefinition:
    key: str
    label: str
    steps: tuple[StepDefinition, ...]
    target_ms: float
    timeout_ms: float
    description: str = ""
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({step.name: i for i, step in enumerate(self.steps)})

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    def step_index(self, name: str) -> int:
        """Position of a step; raises UnknownStep."""
        try:
            return self._index[name]
        except KeyError:
            raise UnknownStep(self.key, name, self.step_names) from None

    def has_step(self, name: str) -> bool:
        return name in self._index

    def step_target_ms(self, name: str) -> float:
        """The step's own target, else its equal share of the journey's target."""
        step = self.steps[self.step_index(name)]
        if step.target_ms is not None:
            return step.target_ms
        return self.target_ms / len(self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "label": self.label, "description": self.description,
            "target_ms": self.target_ms, "timeout_ms": self.timeout_ms,
            "steps": [{"name": s.name, "label": s.label, "target_ms": self.step_target_ms(s.name),
                       "own_target": s.target_ms is not None} for s in self.steps],
        }


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _steps(*names: str) -> list[str]:
    return list(names)


# The seven journeys of the original design, with the LMS's step names in the
# order a user meets them. Timeouts are generous multiples of the target: they
# decide when a journey is given up for lost, not when it is slow.
BUILTIN_TYPES: dict[str, dict[str, Any]] = {
    "student_registration": {
        "label": "Student registration",
        "description": "A visitor creates a student account and reaches the dashboard.",
        "steps": _steps("form_view", "form_submitted", "account_created", "profile_view",
                        "profile_completed", "welcome_view", "first_dashboard"),
        "target_ms": 2 * MINUTE, "timeout_ms": 30 * MINUTE,
    },
    "class_booking": {
        "label": "Class booking",
        "description": "A student finds a class, reserves a seat and pays for it.",
        "steps": _steps("class_list_view", "class_detail_view", "booking_submitted",
                        "seat_reserved", "checkout_started", "payment_confirmed",
                        "confirmation_view"),
        "target_ms": 3 * MINUTE, "timeout_ms": 30 * MINUTE,
    },
    "login": {
        "label": "Login",
        "description": "A user signs in and sees the dashboard.",
        "steps": _steps("form_view", "credentials_submitted", "authenticated",
                        "dashboard_loaded"),
        "target_ms": 10 * SECOND, "timeout_ms": 10 * MINUTE,
    },
    "payment_processing": {
        "label": "Payment processing",
        "description": "Checkout to receipt, through the payment provider.",
        "steps": _steps("checkout_view", "payment_details_submitted", "payment_authorized",
                        "payment_captured", "receipt_view"),
        "target_ms": 1 * MINUTE, "timeout_ms": 15 * MINUTE,
    },
    "teacher_onboarding": {
        "label": "Teacher onboarding",
        "description": "A teacher applies, is reviewed and can publish classes.",
        "steps": _steps("application_started", "profile_submitted", "qualifications_submitted",
                        "availability_submitted", "agreement_signed", "application_reviewed",
                        "onboarding_complete"),
        "target_ms": 30 * MINUTE, "timeout_ms": 24 * 60 * MINUTE,
    },
    "dashboard_loading": {
        "label": "Dashboard loading",
        "description": "The signed-in dashboard, from request to rendered page.",
        "steps": _steps("request_received", "bookings_loaded", "stats_computed", "rendered"),
        "target_ms": 5 * SECOND, "timeout_ms": 2 * MINUTE,
    },
    "report_generation": {
        "label": "Report generation",
        "description": "A report is requested, computed and rendered.",
        "steps": _steps("report_requested", "filters_validated", "data_aggregated",
                        "totals_computed", "report_rendered"),
        "target_ms": 15 * SECOND, "timeout_ms": 5 * MINUTE,
    },
}


def _number(key: str, spec: Mapping[str, Any], name: str, required: bool = True) -> float | None:
    value = spec.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ImproperlyConfigured(
            f"PERFMONITOR['JOURNEY_TYPES'][{key!r}][{name!r}] must be a number of "
            f"milliseconds greater than 0, not {value!r}.")
    return float(value)


def _build_step(key: str, item: Any) -> StepDefinition:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
        raise ImproperlyConfigured(
            f"PERFMONITOR['JOURNEY_TYPES'][{key!r}]['steps'] items must be step names or "
            f"{{'name': ..., 'target_ms': ...}} dicts, not {item!r}.")
    name = item["name"]
    if not NAME_RE.match(name):
        raise ImproperlyConfigured(
            f"Step name {name!r} of journey {key!r} must be lower-case letters, digits and "
            "underscores, starting with a letter, at most 50 characters.")
    return StepDefinition(name=name, label=str(item.get("label") or _label(name)),
                          target_ms=_number(key, item, "target_ms", required=False))


def build_definition(key: str, spec: Mapping[str, Any]) -> JourneyDefinition:
    """Validate one type's settings and build its definition (ImproperlyConfigured)."""
    if not NAME_RE.match(key):
        raise ImproperlyConfigured(
            f"Journey type {key!r} must be lower-case letters, digits and underscores, "
            "starting with a letter, at most 50 characters.")
    unknown = set(spec) - {"label", "description", "steps", "target_ms", "timeout_ms"}
    if unknown:
        raise ImproperlyConfigured(
            f"PERFMONITOR['JOURNEY_TYPES'][{key!r}] has unknown fields {sorted(unknown)}; "
            "allowed: label, description, steps, target_ms, timeout_ms.")
    raw_steps = spec.get("steps")
    if not isinstance(raw_steps, (list, tuple)) or not raw_steps:
        raise ImproperlyConfigured(
            f"PERFMONITOR['JOURNEY_TYPES'][{key!r}]['steps'] must be a non-empty list.")
    steps = tuple(_build_step(key, item) for item in raw_steps)
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ImproperlyConfigured(f"Journey {key!r} lists a step twice: {names}.")
    target = _number(key, spec, "target_ms")
    timeout = _number(key, spec, "timeout_ms", required=False)
    assert target is not None
    return JourneyDefinition(
        key=key, label=str(spec.get("label") or _label(key)),
        description=str(spec.get("description") or ""), steps=steps, target_ms=target,
        timeout_ms=timeout if timeout is not None else max(10 * target, 5 * MINUTE))


def build_definitions(overrides: Mapping[str, Any]) -> dict[str, JourneyDefinition]:
    """Built-in types merged with the ``JOURNEY_TYPES`` setting."""
    if not isinstance(overrides, Mapping):
        raise ImproperlyConfigured("PERFMONITOR['JOURNEY_TYPES'] must be a dict.")
    specs: dict[str, dict[str, Any]] = {k: dict(v) for k, v in BUILTIN_TYPES.items()}
    for key, spec in overrides.items():
        if spec is None:
            specs.pop(key, None)
            continue
        if not isinstance(spec, Mapping):
            raise ImproperlyConfigured(
                f"PERFMONITOR['JOURNEY_TYPES'][{key!r}] must be a dict (or None to remove "
                f"a built-in type), not {type(spec).__name__}.")
        specs[key] = {**specs.get(key, {}), **spec}
    return {key: build_definition(key, spec) for key, spec in specs.items()}


_cache: dict[int, dict[str, JourneyDefinition]] = {}


def journey_types() -> dict[str, JourneyDefinition]:
    """Every journey type by key (cached until the JOURNEY_TYPES setting changes)."""
    overrides = settings.JOURNEY_TYPES
    cached = _cache.get(id(overrides))
    if cached is None:
        _cache.clear()  # keyed by the settings object: a settings change invalidates it
        cached = _cache[id(overrides)] = build_definitions(overrides)
        _cache_refs[:] = [overrides]  # keep it alive so its id is not reused
    return cached


_cache_refs: list[Any] = []


def get_definition(journey_type: str) -> JourneyDefinition:
    """The definition of a type; raises UnknownJourneyType."""
    try:
        return journey_types()[journey_type]
    except KeyError:
        raise UnknownJourneyType(journey_type) from None
