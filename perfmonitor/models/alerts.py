"""Alert rules, alert episodes, silences, maintenance windows and evaluation claims.

``PerformanceAlert`` mirrors the original ``performance_alerts`` table (its
first columns) and is one *episode* of one alert instance: a (rule, label
fingerprint) pair from the moment its condition first holds until it is
resolved. At most one episode per instance is open at a time (a partial unique
constraint). Acknowledgement, silences and maintenance are flags on the
episode, not states (DESIGN §Alerting). Notifications live in
``perfmonitor.models.notifications``.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q

from perfmonitor.ids import uuid7


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertState(models.TextChoices):
    INACTIVE = "inactive", "Inactive (cleared while pending)"
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    RECOVERING = "recovering", "Recovering"
    RESOLVED = "resolved", "Resolved"
    NO_DATA = "no_data", "No data"
    ERROR = "error", "Error"


OPEN_STATES = (AlertState.PENDING, AlertState.FIRING, AlertState.RECOVERING,
               AlertState.NO_DATA, AlertState.ERROR)
# States that are "firing" as far as receivers are concerned (Alertmanager sees them as firing).
NOTIFIED_STATES = (AlertState.FIRING, AlertState.RECOVERING, AlertState.NO_DATA, AlertState.ERROR)


class ResolutionReason(models.TextChoices):
    RECOVERED = "recovered", "Value back within the resolve threshold"
    CLEARED_WHILE_PENDING = "cleared_while_pending", "Cleared before `for` elapsed"
    DATA_RETURNED = "data_returned", "Data returned within the thresholds"
    RULE_DISABLED = "rule_disabled", "Rule disabled"
    RULE_DELETED = "rule_deleted", "Rule deleted"
    RULE_CHANGED = "rule_changed", "Rule no longer groups by these labels"
    CHANNEL_RECOVERED = "channel_recovered", "Notification channel delivers again"


class Operator(models.TextChoices):
    GT = ">", "above (>)"
    GTE = ">=", "at or above (>=)"
    LT = "<", "below (<)"
    LTE = "<=", "at or below (<=)"


class MetricSource(models.TextChoices):
    SERIES = "series", "Rollup series"
    SCORE = "score", "Performance score"
    JOURNEY = "journey", "Journey metric"


class Aggregation(models.TextChoices):
    P50 = "p50", "p50"
    P75 = "p75", "p75"
    P90 = "p90", "p90"
    P95 = "p95", "p95"
    P99 = "p99", "p99"
    MEAN = "mean", "mean"
    MIN = "min", "min"
    MAX = "max", "max"
    SUM = "sum", "sum"
    COUNT = "count", "count"
    RATE = "rate", "count per minute"
    ERROR_RATE = "error_rate", "error rate (%)"
    # journey metrics (perfmonitor.journeys.journey_metric)
    COMPLETION_RATE = "completion_rate", "journey completion rate (%)"
    ABANDONMENT_RATE = "abandonment_rate", "journey abandonment rate (%)"
    FAILURE_RATE = "failure_rate", "journey failure rate (%)"
    P75_DURATION = "p75_duration", "journey p75 duration (ms)"
    MEDIAN_DURATION = "median_duration", "journey median duration (ms)"
    APDEX = "apdex", "journey Apdex (0..1)"
    # performance scores (perfmonitor.analytics.scores.performance_score)
    OVERALL = "overall", "overall score"
    FRONTEND = "frontend", "front-end score"
    SERVER = "server", "server score"
    JOURNEYS = "journeys", "journeys score"


class NoDataPolicy(models.TextChoices):
    OK = "ok", "Treat as OK (resolve)"
    NO_DATA = "no_data", "Enter the no-data state (notified)"
    KEEP_STATE = "keep_state", "Keep the last state"
    ALERTING = "alerting", "Treat as breaching"


class ErrorPolicy(models.TextChoices):
    ERROR = "error", "Enter the error state (notified)"
    KEEP_STATE = "keep_state", "Keep the last state"
    ALERTING = "alerting", "Treat as breaching"


class ThresholdMode(models.TextChoices):
    STATIC = "static", "Static thresholds"
    PERCENT_CHANGE = "percent_change", "Percent change against an earlier window"
    BASELINE = "baseline", "Robust baseline: median + k·MAD of earlier windows"


class AlertRule(models.Model):
    """What to watch, when it is bad, and who hears about it.

    Validation lives in ``perfmonitor.alerts.rules.validate_rule`` (used by
    ``clean()``, the admin form and the API serializer).
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    key = models.SlugField(max_length=100, unique=True,
                           help_text="Stable identifier (label `rule`).")
    name = models.CharField(max_length=200, unique=True, help_text="Label `alertname`.")
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, editable=False,
                                     help_text="Installed by perfmonitor; editable like any rule.")
    # -- the metric ---------------------------------------------------------------------------
    source = models.CharField(max_length=16, choices=MetricSource.choices,
                              default=MetricSource.SERIES)
    kind = models.CharField(max_length=16, blank=True, default="",
                            help_text="Rollup kind (request, query, vital, api, resource, "
                                      "journey...) for series rules.")
    series_name = models.CharField(
        max_length=255, blank=True, default="",
        help_text="Series name to read: exact, or a glob (`/api/*`) for a group; blank = all. "
                  "Journey type for journey rules.")
    series_dimension = models.CharField(max_length=255, blank=True, default="",
                                        help_text="Series dimension: exact or glob; blank = all.")
    aggregation = models.CharField(max_length=20, choices=Aggregation.choices,
                                   default=Aggregation.P95)
    window_seconds = models.PositiveIntegerField(default=300, help_text="Window the value is "
                                                 "aggregated over, ending at the evaluated minute.")
    group_by = models.JSONField(default=list, blank=True, help_text="Labels that split the rule "
                                "into one alert per label set, e.g. [\"route\"] or [\"page\"].")
    min_samples = models.PositiveIntegerField(default=1, help_text="Fewer samples in the window "
                                              "count as no data.")
    # -- the condition ------------------------------------------------------------------------
    operator = models.CharField(max_length=2, choices=Operator.choices, default=Operator.GT)
    warning_threshold = models.FloatField(null=True, blank=True)
    critical_threshold = models.FloatField(null=True, blank=True)
    resolve_threshold = models.FloatField(null=True, blank=True, help_text="Hysteresis: a firing "
                                          "alert resolves only once the value is back past this "
                                          "(default: the lowest breach threshold).")
    threshold_mode = models.CharField(max_length=16, choices=ThresholdMode.choices,
                                      default=ThresholdMode.STATIC)
    baseline_offset_seconds = models.PositiveIntegerField(
        default=86400, help_text="Dynamic thresholds: compare with the same window this long "
                                 "earlier (86400 = a day, 604800 = a week).")
    baseline_periods = models.PositiveSmallIntegerField(
        default=7, help_text="Baseline mode: how many earlier windows form the median/MAD.")
    for_seconds = models.PositiveIntegerField(default=0, help_text="The condition must hold this "
                                              "long (pending) before the alert fires.")
    keep_firing_for_seconds = models.PositiveIntegerField(
        default=0, help_text="Keep firing (recovering) this long after the condition clears.")
    no_data_policy = models.CharField(max_length=16, choices=NoDataPolicy.choices,
                                      default=NoDataPolicy.OK)
    error_policy = models.CharField(max_length=16, choices=ErrorPolicy.choices,
                                    default=ErrorPolicy.ERROR)
    labels = models.JSONField(default=dict, blank=True, help_text="Extra labels, e.g. "
                              "{\"team\": \"web\"}; silences and receivers match on them.")
    runbook_url = models.URLField(blank=True, default="")
    # -- notifications ------------------------------------------------------------------------
    channels = models.ManyToManyField("perfmonitor.NotificationChannel", blank=True,
                                      related_name="rules")
    escalation = models.JSONField(
        default=list, blank=True,
        help_text="Escalation levels while unacknowledged: "
                  "[{\"after_seconds\": 900, \"channels\": [\"On-call SMS\"]}, ...]; each delay "
                  "counts from the previous level (the first from firing).")
    escalation_loops = models.PositiveSmallIntegerField(
        default=0, help_text="How many times to run the escalation levels again after the last.")
    group_wait_seconds = models.PositiveIntegerField(null=True, blank=True,
                                                     help_text="Default: ALERT_GROUP_WAIT.")
    group_interval_seconds = models.PositiveIntegerField(null=True, blank=True,
                                                         help_text="Default: ALERT_GROUP_INTERVAL.")
    repeat_interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Default: ALERT_REPEAT_INTERVAL.")
    send_resolved = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "perfmonitor_alert_rules"
        verbose_name = "alert rule"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from perfmonitor.alerts.rules import validate_rule

        validate_rule(self)


class PerformanceAlert(models.Model):
    """One alert episode; mirrors the original ``performance_alerts`` table."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    alert_id = models.CharField(max_length=255, db_index=True)
    alert_type = models.CharField(max_length=100)
    severity = models.CharField(max_length=20, choices=Severity.choices)
    message = models.TextField()
    threshold = models.FloatField(null=True, blank=True)
    actual_value = models.FloatField(null=True, blank=True)
    timestamp = models.DateTimeField()
    acknowledged = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # -- alerting engine ----------------------------------------------------------------------
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="alerts")
    fingerprint = models.CharField(max_length=32, default="", db_index=True,
                                   help_text="Hash of the rule and its group labels.")
    labels = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=AlertState.choices,
                             default=AlertState.PENDING)
    state_since = models.DateTimeField(null=True, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    peak_value = models.FloatField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolution_reason = models.CharField(max_length=32, choices=ResolutionReason.choices,
                                         blank=True, default="")
    silenced = models.BooleanField(default=False)
    in_maintenance = models.BooleanField(default=False)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalation_loop = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    notified_severity = models.CharField(max_length=20, blank=True, default="",
                                         help_text="Severity of the last firing notification.")
    last_notified_at = models.DateTimeField(null=True, blank=True)
    repeat_count = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=0, help_text="Compare-and-set counter.")

    class Meta:
        db_table = "perfmonitor_performance_alerts"
        verbose_name = "performance alert"
        ordering = ["-timestamp"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "fingerprint"],
                                    condition=Q(state__in=[s.value for s in OPEN_STATES]),
                                    name="pm_alert_one_open_episode"),
        ]
        indexes = [
            models.Index(fields=["state", "rule"], name="pm_alert_state_rule"),
            models.Index(fields=["fired_at"], name="pm_alert_fired_at"),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class AlertEvaluation(models.Model):
    """The claim that one evaluator evaluates one rule for one minute (unique).

    Inserted in the same transaction as the state changes it causes, so two
    beats or two workers racing for the same (rule, minute) evaluate it once:
    the second insert waits for the first transaction and then fails.
    """

    id = models.BigAutoField(primary_key=True)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="evaluations")
    minute = models.DateTimeField()
    evaluated_at = models.DateTimeField()
    instances = models.PositiveIntegerField(default=0)
    changes = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        db_table = "perfmonitor_alert_evaluations"
        verbose_name = "alert evaluation"
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "minute"], name="pm_alert_eval_claim"),
        ]
        indexes = [models.Index(fields=["minute"], name="pm_alert_eval_minute")]

    def __str__(self) -> str:
        return f"{self.rule_id} @ {self.minute:%Y-%m-%d %H:%M}"


class Silence(models.Model):
    """Mutes notifications of alerts whose labels match every matcher, between two instants."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    matchers = models.JSONField(help_text="[{\"label\": \"route\", \"op\": \"=\", \"value\": "
                                "\"/courses/\"}]; op is =, !=, =~ or !~ (regex, full match).")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    comment = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "perfmonitor_alert_silences"
        verbose_name = "alert silence"
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["ends_at", "starts_at"], name="pm_silence_period")]

    def __str__(self) -> str:
        from perfmonitor.alerts.silences import describe_matchers

        return f"{describe_matchers(self.matchers)} until {self.ends_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        from perfmonitor.alerts.silences import validate_silence

        validate_silence(self)


class MaintenanceWindow(models.Model):
    """A recurring period (e.g. Sundays 02:00-04:00 Europe/Berlin) during which matching alerts
    are evaluated but not notified."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    matchers = models.JSONField(default=list, blank=True,
                                help_text="Same format as silences; empty matches every alert.")
    timezone = models.CharField(max_length=64, default="UTC")
    weekdays = models.JSONField(default=list, blank=True,
                                help_text="0 = Monday ... 6 = Sunday; empty = every day.")
    start_time = models.TimeField(help_text="Local start time of each occurrence.")
    duration_minutes = models.PositiveIntegerField()
    active_from = models.DateField(null=True, blank=True)
    active_until = models.DateField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "perfmonitor_maintenance_windows"
        verbose_name = "maintenance window"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from perfmonitor.alerts.silences import validate_maintenance_window

        validate_maintenance_window(self)
