"""Who may see the dashboard and who may act on alerts from it."""

from __future__ import annotations

from typing import Any

VIEW_PERMISSION = "perfmonitor.view_dashboard"
ACKNOWLEDGE_PERMISSION = "perfmonitor.change_performancealert"


def can_view_dashboard(user: Any) -> bool:
    """Active staff holding ``perfmonitor.view_dashboard`` (superusers hold every permission)."""
    return bool(user is not None and getattr(user, "is_authenticated", False)
                and user.is_active and user.is_staff and user.has_perm(VIEW_PERMISSION))


def can_acknowledge_alerts(user: Any) -> bool:
    return can_view_dashboard(user) and user.has_perm(ACKNOWLEDGE_PERMISSION)
