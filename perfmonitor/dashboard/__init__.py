"""The live performance dashboard inside the Django admin.

Pages are views of a ``DashboardAdmin`` registered on the admin site (see
``perfmonitor.dashboard.admin``); every number comes from the analytics,
journeys and alerting packages, never from a query of our own over raw rows.
"""
