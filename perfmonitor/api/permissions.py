from rest_framework.permissions import BasePermission


class CanViewDashboard(BasePermission):
    """Staff with ``perfmonitor.view_dashboard``: everything that reads monitoring data."""

    message = "Staff with the perfmonitor.view_dashboard permission only."

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff
                    and user.has_perm("perfmonitor.view_dashboard"))
