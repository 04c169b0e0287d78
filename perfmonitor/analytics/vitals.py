"""Web Vitals thresholds and ratings (web-vitals library semantics, DESIGN §Web Vitals)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VitalSpec:
    name: str
    good: float  # value <= good is "good"
    poor: float  # value > poor is "poor"
    unit: str
    max_value: float  # larger values are rejected as implausible
    scored: bool = True


VITALS: dict[str, VitalSpec] = {
    "LCP": VitalSpec("LCP", 2500, 4000, "ms", 600_000),
    "INP": VitalSpec("INP", 200, 500, "ms", 60_000),
    "CLS": VitalSpec("CLS", 0.1, 0.25, "", 10),
    "FCP": VitalSpec("FCP", 1800, 3000, "ms", 600_000),
    "TTFB": VitalSpec("TTFB", 800, 1800, "ms", 600_000),
    # Legacy: accepted, stored and rated, never scored (INP replaced it in March 2024).
    "FID": VitalSpec("FID", 100, 300, "ms", 60_000, scored=False),
}
CORE_WEB_VITALS = ("LCP", "INP", "CLS")

# Device classes the collect API accepts (derived from the User-Agent when a beacon
# carries none). Each vital is also rolled up per device class, in the series kind
# ``vital:<device>`` (name = vital, dimension = page), so the dashboard, the read API
# and alert rules can filter by device without scanning raw rows.
DEVICE_CLASSES = ("mobile", "tablet", "desktop")
DEVICE_VITAL_KINDS = {device: f"vital:{device}" for device in DEVICE_CLASSES}

GOOD = "good"
NEEDS_IMPROVEMENT = "needs-improvement"
POOR = "poor"


def rate(name: str, value: float) -> str:
    spec = VITALS[name]
    if value <= spec.good:
        return GOOD
    if value <= spec.poor:
        return NEEDS_IMPROVEMENT
    return POOR


def vital_kind(device: str | None = None) -> str:
    """Rollup kind of the vitals of one device class ("vital" for all devices)."""
    if not device:
        return "vital"
    try:
        return DEVICE_VITAL_KINDS[device]
    except KeyError:
        raise ValueError(f"device must be one of {', '.join(DEVICE_CLASSES)}; "
                         f"got {device[:20]!r}") from None
