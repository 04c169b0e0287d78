"""Admin for alert rules, channels, silences, maintenance windows and alert episodes.

Imported at the end of ``perfmonitor/admin.py``; replaces its read-only
``PerformanceAlert`` admin with one that can acknowledge (compare-and-set).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from perfmonitor.alerts import clock
from perfmonitor.alerts.ack import AckConflict, acknowledge
from perfmonitor.alerts.notifiers.webhook import generate_secret
from perfmonitor.alerts.preview import PreviewError, preview_rule
from perfmonitor.alerts.rules import describe_metric, format_seconds
from perfmonitor.alerts.silences import describe_matchers
from perfmonitor.models import (
    AlertNotification,
    AlertRule,
    InAppNotification,
    MaintenanceWindow,
    NotificationChannel,
    NotificationDelivery,
    PerformanceAlert,
    Silence,
)
from perfmonitor.models.alerts import OPEN_STATES


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "enabled", "metric", "condition", "for_display", "channel_names",
                    "open_alerts", "is_default"]
    list_filter = ["enabled", "source", "kind", "is_default"]
    search_fields = ["name", "key", "description", "series_name"]
    prepopulated_fields = {"key": ("name",)}
    filter_horizontal = ["channels"]
    readonly_fields = ["is_default", "created_at", "updated_at"]
    actions = ["preview_rules", "enable_rules", "disable_rules"]
    fieldsets = [
        (None, {"fields": ["name", "key", "description", "enabled", "is_default", "runbook_url",
                           "labels"]}),
        ("Metric", {"fields": ["source", "kind", "series_name", "series_dimension",
                               "aggregation", "window_seconds", "group_by", "min_samples"]}),
        ("Condition", {"fields": ["operator", "warning_threshold", "critical_threshold",
                                  "resolve_threshold", "for_seconds", "keep_firing_for_seconds",
                                  "no_data_policy", "error_policy"]}),
        ("Dynamic thresholds", {"classes": ["collapse"], "fields": [
            "threshold_mode", "baseline_offset_seconds", "baseline_periods"]}),
        ("Notifications", {"fields": ["channels", "send_resolved", "group_wait_seconds",
                                      "group_interval_seconds", "repeat_interval_seconds",
                                      "escalation", "escalation_loops"]}),
        ("History", {"classes": ["collapse"], "fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("channels")

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "runbook_url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="metric")
    def metric(self, rule: AlertRule) -> str:
        text = describe_metric(rule)
        return f"{text} by {', '.join(rule.group_by)}" if rule.group_by else text

    @admin.display(description="condition")
    def condition(self, rule: AlertRule) -> str:
        parts = [f"{name} {rule.operator} {value:g}" for name, value in
                 (("warning", rule.warning_threshold), ("critical", rule.critical_threshold))
                 if value is not None]
        if rule.threshold_mode != "static":
            parts.append(f"({rule.get_threshold_mode_display()})")
        return ", ".join(parts)

    @admin.display(description="for")
    def for_display(self, rule: AlertRule) -> str:
        return format_seconds(rule.for_seconds) if rule.for_seconds else "-"

    @admin.display(description="channels")
    def channel_names(self, rule: AlertRule) -> str:
        return ", ".join(c.name for c in rule.channels.all()) or "-"

    @admin.display(description="open alerts")
    def open_alerts(self, rule: AlertRule) -> int:
        return rule.alerts.filter(state__in=OPEN_STATES).count()

    def get_urls(self) -> list[Any]:
        return [path("<uuid:pk>/preview/", self.admin_site.admin_view(self.preview_view),
                     name="perfmonitor_alertrule_preview"), *super().get_urls()]

    def preview_view(self, request: HttpRequest, pk: Any) -> HttpResponse:
        rule = get_object_or_404(AlertRule, pk=pk)
        if not self.has_view_permission(request, rule):
            raise PermissionDenied
        try:
            hours = min(168, max(1, int(request.GET.get("hours", "24"))))
        except ValueError:
            hours = 24
        end = clock.now()
        context = {**self.admin_site.each_context(request), "rule": rule, "hours": hours,
                   "opts": self.model._meta, "title": f"Preview: {rule.name}"}
        try:
            context["preview"] = preview_rule(rule, end - timedelta(hours=hours), end)
        except PreviewError as exc:
            context["error"] = str(exc)
        return TemplateResponse(request, "perfmonitor/alerts/preview.html", context)

    @admin.action(description="Preview what the selected rules would have done (last 24 h)")
    def preview_rules(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        rules = list(queryset[:1])
        if len(queryset) > 1:
            self.message_user(request, "Previewing the first selected rule; preview one rule "
                                       "at a time.", messages.INFO)
        return self.preview_view(request, rules[0].pk) if rules else None

    @admin.action(description="Enable the selected rules", permissions=["change"])
    def enable_rules(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"{queryset.update(enabled=True)} rule(s) enabled.")

    @admin.action(description="Disable the selected rules (open alerts resolve)",
                  permissions=["change"])
    def disable_rules(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"{queryset.update(enabled=False)} rule(s) disabled.")


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "target_display", "enabled", "disabled_reason",
                    "consecutive_failures", "last_success_at", "last_failure_at"]
    list_filter = ["type", "enabled"]
    search_fields = ["name"]
    readonly_fields = ["consecutive_failures", "last_success_at", "last_failure_at",
                       "created_at"]
    actions = ["reenable"]

    @admin.display(description="target")
    def target_display(self, channel: NotificationChannel) -> str:
        if channel.type in ("slack", "webhook"):  # webhook URLs are credentials: show the host
            from urllib.parse import urlsplit

            return f"{urlsplit(channel.target).netloc}/…"
        return channel.target or "-"

    def save_model(self, request: HttpRequest, obj: NotificationChannel, form: Any,
                   change: bool) -> None:
        if obj.type == "webhook" and not obj.secret:
            obj.secret = generate_secret()
        super().save_model(request, obj, form, change)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        if "secret" in form.base_fields:
            form.base_fields["secret"].help_text += " Left empty, a new secret is generated."
        return form

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"secret": generate_secret()}

    @admin.action(description="Re-enable and reset the failure count", permissions=["change"])
    def reenable(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(enabled=True, disabled_reason="", consecutive_failures=0)
        self.message_user(request, f"{count} channel(s) enabled.")


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ["matchers_display", "starts_at", "ends_at", "active", "created_by",
                    "comment"]
    readonly_fields = ["created_by", "created_at"]
    actions = ["expire"]

    @admin.display(description="matchers")
    def matchers_display(self, silence: Silence) -> str:
        return describe_matchers(silence.matchers)

    @admin.display(boolean=True)
    def active(self, silence: Silence) -> bool:
        return silence.starts_at <= clock.now() < silence.ends_at

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        now = clock.now()
        return {"starts_at": now, "ends_at": now + timedelta(hours=2),
                "matchers": [{"label": "alertname", "op": "=", "value": ""}]}

    def save_model(self, request: HttpRequest, obj: Silence, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Expire the selected silences now", permissions=["change"])
    def expire(self, request: HttpRequest, queryset: QuerySet) -> None:
        now = clock.now()
        count = queryset.filter(ends_at__gt=now).update(ends_at=now)
        self.message_user(request, f"{count} silence(s) expired.")


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    list_display = ["name", "enabled", "schedule", "matchers_display", "created_by"]
    list_filter = ["enabled"]
    readonly_fields = ["created_by", "created_at"]

    @admin.display(description="schedule")
    def schedule(self, window: MaintenanceWindow) -> str:
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        days = ",".join(names[d] for d in window.weekdays or [])
        return (f"{days or 'daily'} {window.start_time:%H:%M} {window.timezone}, "
                f"{window.duration_minutes} min")

    @admin.display(description="matchers")
    def matchers_display(self, window: MaintenanceWindow) -> str:
        return describe_matchers(window.matchers)

    def save_model(self, request: HttpRequest, obj: MaintenanceWindow, form: Any,
                   change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class DeliveryInline(ReadOnly, admin.TabularInline):
    model = NotificationDelivery
    fields = ["attempt", "started_at", "outcome", "status_code", "duration_ms", "error",
              "worker"]
    readonly_fields = fields
    extra = 0


@admin.register(AlertNotification)
class AlertNotificationAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["created_at", "event", "channel", "status", "attempts", "due_at",
                    "delivered_at", "last_error"]
    list_filter = ["status", "channel"]
    search_fields = ["idempotency_key", "event"]
    inlines = [DeliveryInline]


@admin.register(InAppNotification)
class InAppNotificationAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["created_at", "severity", "status", "title", "read_at"]
    list_filter = ["status", "severity"]


if admin.site.is_registered(PerformanceAlert):
    admin.site.unregister(PerformanceAlert)


@admin.register(PerformanceAlert)
class PerformanceAlertAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["timestamp", "state", "severity", "rule_link", "labels_display",
                    "actual_value", "acknowledged", "acknowledged_by", "silenced",
                    "resolved_at"]
    list_filter = ["state", "severity", "acknowledged", "silenced", "rule"]
    search_fields = ["message", "alert_id"]
    date_hierarchy = "timestamp"
    actions = ["acknowledge_alerts"]
    list_select_related = ["rule", "acknowledged_by"]
    show_full_result_count = False

    @admin.display(description="rule")
    def rule_link(self, alert: PerformanceAlert) -> str:
        if alert.rule is None:
            return alert.alert_type
        url = reverse("admin:perfmonitor_alertrule_change", args=[alert.rule_id])
        return format_html('<a href="{}">{}</a>', url, alert.rule.name)

    @admin.display(description="labels")
    def labels_display(self, alert: PerformanceAlert) -> str:
        group = (alert.metadata or {}).get("group") or {}
        return ", ".join(f"{k}={v}" for k, v in sorted(group.items())) or "-"

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("perfmonitor.change_performancealert") or \
            request.user.has_perm("perfmonitor.view_dashboard")

    @admin.action(description="Acknowledge the selected alerts", permissions=["acknowledge"])
    def acknowledge_alerts(self, request: HttpRequest, queryset: QuerySet) -> None:
        done, refused = 0, []
        for alert in queryset:
            try:
                acknowledge(alert.pk, request.user, expected_version=alert.version)
                done += 1
            except AckConflict as conflict:
                refused.append(f"{conflict.alert.alert_id}: {conflict.reason}")
        if done:
            self.message_user(request, f"{done} alert(s) acknowledged.", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)
