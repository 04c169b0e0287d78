"""Read-only admin for perfmonitor's tables and the monitor's own health.

Measurements can be listed, filtered (time, type, route...) and searched, never
added, changed or deleted. The raw tables have no ``date_hierarchy``: its
year/month links need a scan of every row's date.

Domain packages register their own admin classes in ``<package>/admin.py``;
they are imported at the bottom so Django's autodiscovery finds them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from perfmonitor.health import STALE_AFTER, process_health
from perfmonitor.models import (
    MetricRollup,
    MonitorHealth,
    PerformanceAlert,
    PerformanceMetric,
    QueryFingerprint,
    UserJourney,
    WebVital,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Measurements are facts: they can be looked at and filtered, not edited."""

    list_per_page = 50
    show_full_result_count = False  # COUNT(*) over millions of rows is not free

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PerformanceMetric)
class PerformanceMetricAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "metric_type", "metric_name", "duration", "url", "user_id"]
    list_filter = ["metric_type", ("timestamp", admin.DateFieldListFilter)]
    search_fields = ["metric_name", "url", "session_id", "user_id"]


@admin.register(WebVital)
class WebVitalAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "metric_name", "value", "rating", "url"]
    list_filter = ["metric_name", "rating", ("timestamp", admin.DateFieldListFilter)]
    search_fields = ["url", "session_id"]


@admin.register(MetricRollup)
class MetricRollupAdmin(ReadOnlyAdmin):
    list_display = ["bucket_start", "resolution", "kind", "name", "dimension", "count",
                    "mean_display", "max", "errors"]
    list_filter = ["kind", "resolution", ("bucket_start", admin.DateFieldListFilter)]
    search_fields = ["name", "dimension"]
    exclude = ["sketch"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[MetricRollup]:
        # Compaction's bookkeeping row (its watermarks) is not a metric.
        from perfmonitor.analytics.query import STATE_KIND

        return super().get_queryset(request).exclude(kind=STATE_KIND)

    @admin.display(description="mean")
    def mean_display(self, obj: MetricRollup) -> str:
        return f"{obj.sum / obj.count:.2f}" if obj.count else "-"


@admin.register(QueryFingerprint)
class QueryFingerprintAdmin(ReadOnlyAdmin):
    list_display = ["fingerprint", "sql", "first_seen"]
    list_filter = [("first_seen", admin.DateFieldListFilter)]
    search_fields = ["fingerprint", "sql"]


@admin.register(UserJourney)
class UserJourneyAdmin(ReadOnlyAdmin):
    list_display = ["start_time", "journey_type", "status", "duration", "user_id",
                    "abandonment_reason"]
    list_filter = ["journey_type", "status", ("start_time", admin.DateFieldListFilter)]
    search_fields = ["journey_id", "user_id", "session_id"]
    date_hierarchy = "start_time"


class AliveFilter(admin.SimpleListFilter):
    title = "alive"
    parameter_name = "alive"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Reporting"), ("no", "Stopped reporting")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        threshold = timezone.now() - STALE_AFTER
        if self.value() == "yes":
            return queryset.filter(updated_at__gte=threshold)
        if self.value() == "no":
            return queryset.filter(updated_at__lt=threshold)
        return queryset


@admin.register(MonitorHealth)
class MonitorHealthAdmin(ReadOnlyAdmin):
    """The monitor's own health, one row per process (see also ``perfmonitor_status``)."""

    list_display = ["process", "alive", "updated_at", "captured", "flushed", "dropped",
                    "flush_errors", "internal_errors", "buffer_size", "last_flush_age",
                    "last_error"]
    list_filter = [AliveFilter, ("updated_at", admin.DateFieldListFilter)]
    search_fields = ["process", "last_error"]

    @admin.display(boolean=True, description="alive")
    def alive(self, obj: MonitorHealth) -> bool:
        return bool(process_health(obj)["alive"])

    @admin.display(description="last flush")
    def last_flush_age(self, obj: MonitorHealth) -> str:
        age = process_health(obj)["last_flush_age_seconds"]
        return "never" if age is None else f"{age:.0f} s ago"


if not admin.site.is_registered(PerformanceAlert):
    @admin.register(PerformanceAlert)
    class PerformanceAlertAdmin(ReadOnlyAdmin):
        list_display = ["timestamp", "severity", "alert_type", "message", "acknowledged",
                        "resolved_at"]
        list_filter = ["severity", "acknowledged", ("timestamp", admin.DateFieldListFilter)]
        search_fields = ["message", "alert_id"]

from perfmonitor.alerts import admin as _alerts_admin  # noqa: E402,F401  (alerting)
from perfmonitor.dashboard import admin as _dashboard_admin  # noqa: E402,F401  (the dashboard)

# -- every other perfmonitor model -------------------------------------------
# Domain admin modules are imported above this block (add new ones above it).
# Whatever they leave unregistered still gets a read-only, filterable,
# searchable page, so every perfmonitor table is visible to staff.

_LISTED = ("CharField", "IntegerField", "BigIntegerField", "PositiveIntegerField",
           "FloatField", "BooleanField", "DateTimeField", "ForeignKey", "UUIDField")
_FILTERED = ("BooleanField", "DateTimeField", "DateField")


def _read_only_admin_for(model: type[Model]) -> type[ReadOnlyAdmin]:
    fields = list(model._meta.concrete_fields)
    by_type = [(f, f.get_internal_type()) for f in fields]
    listed = [f.name for f, kind in by_type if kind in _LISTED][:8]
    filtered = [f.name for f, kind in by_type if f.choices or kind in _FILTERED][:4]
    searched = [f.name for f, kind in by_type if kind == "CharField"][:4]
    attrs = {"list_display": listed or ["__str__"], "list_filter": filtered,
             "search_fields": searched, "__module__": __name__}
    return type(f"{model.__name__}ReadOnlyAdmin", (ReadOnlyAdmin,), attrs)


def register_remaining_models() -> None:
    from django.apps import apps

    for model in apps.get_app_config("perfmonitor").get_models():
        if not admin.site.is_registered(model):
            admin.site.register(model, _read_only_admin_for(model))


register_remaining_models()
