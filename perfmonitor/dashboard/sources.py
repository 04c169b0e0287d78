"""Where the dashboard's numbers come from: thin calls into the domain packages.

Each function here calls the analytics or alerting package's own public
function or endpoint; nothing here queries raw tables or recomputes what those
packages compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.urls import NoReverseMatch, reverse

from perfmonitor.dashboard.controls import Controls


class AlertNotFound(LookupError):
    pass


@dataclass(frozen=True)
class AckOutcome:
    acknowledged: bool
    message: str


def report_links(controls: Controls) -> list[dict[str, str]]:
    """Export links to the analytics report endpoint, one per format it serves (none when
    the host has not included ``perfmonitor.urls``)."""
    try:
        url = reverse("perfmonitor:report")
    except NoReverseMatch:
        return []
    return [{"label": label, "url": f"{url}?window={controls.range_key}&format={fmt}"}
            for fmt, label in (("html", "HTML"), ("csv", "CSV"), ("json", "JSON"))]


def acknowledge_alert(alert_pk: str, user: Any) -> AckOutcome:
    """Acknowledge through the alerting package (its compare-and-set decides)."""
    from perfmonitor.alerts import acknowledge
    from perfmonitor.models import PerformanceAlert

    try:
        alert = PerformanceAlert.objects.only("pk").get(pk=alert_pk)
    except (PerformanceAlert.DoesNotExist, ValidationError, ValueError) as exc:
        raise AlertNotFound(f"No alert {alert_pk!r}.") from exc
    result = acknowledge(alert.pk, user)
    return AckOutcome(result.acknowledged, "Acknowledged." if result.acknowledged
                      else result.reason or "Not acknowledged.")
