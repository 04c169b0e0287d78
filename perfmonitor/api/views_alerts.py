"""Alerting API: rules (CRUD), preview, alert episodes, acknowledge, silences, statistics.

===========================================  ==============================================
``GET/POST alerts/rules``                    list / create rules (model permissions)
``GET/PUT/PATCH/DELETE alerts/rules/<id>``   one rule
``GET alerts/rules/<id>/preview?hours=24``   what the rule would have done (writes nothing)
``POST alerts/rules/preview``                the same for an unsaved rule (body: a rule)
``GET alerts?state=firing&open=1&rule=key``  alert episodes, newest first
``GET alerts/<id>``                          one episode
``POST alerts/<id>/acknowledge``             compare-and-set ack: ``{"version": n}`` (409 if
                                             it changed, was acked or resolved meanwhile)
``GET/POST alerts/silences``                 list / create silences
``GET/DELETE alerts/silences/<id>``          one silence; DELETE expires it now
``GET alerts/statistics?window=7d``          counts, MTTA, MTTR, noisy and flapping rules
===========================================  ==============================================

Rules and silences need staff with the model permissions (view/add/change/delete);
episodes, acknowledging and statistics need ``perfmonitor.view_dashboard``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from perfmonitor.alerts import clock
from perfmonitor.alerts.ack import AckConflict, acknowledge
from perfmonitor.alerts.preview import PreviewError, preview_rule
from perfmonitor.alerts.rules import validate_rule
from perfmonitor.alerts.silences import validate_silence
from perfmonitor.alerts.stats import alert_statistics
from perfmonitor.analytics.query import WindowError, parse_span
from perfmonitor.api.permissions import CanViewDashboard
from perfmonitor.models import AlertRule, NotificationChannel, PerformanceAlert, Silence
from perfmonitor.models.alerts import OPEN_STATES, AlertState

MAX_LIMIT = 500


class StaffModelPermissions(DjangoModelPermissions):
    """Staff with the model permission for the method (view for reads, too)."""

    perms_map = {**DjangoModelPermissions.perms_map,
                 "GET": ["%(app_label)s.view_%(model_name)s"],
                 "HEAD": ["%(app_label)s.view_%(model_name)s"]}

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_staff
                    and super().has_permission(request, view))


class CanViewRules(BasePermission):
    message = "Staff with the perfmonitor.view_alertrule permission only."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff
                    and user.has_perm("perfmonitor.view_alertrule"))


def _django_errors(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class AlertRuleSerializer(serializers.ModelSerializer):
    channels = serializers.SlugRelatedField(many=True, slug_field="name", required=False,
                                            queryset=NotificationChannel.objects.all())
    key = serializers.SlugField(max_length=100, required=False)

    class Meta:
        model = AlertRule
        exclude = ["created_at", "updated_at"]
        read_only_fields = ["id", "is_default"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        rule = AlertRule()
        if self.instance is not None:
            for field in AlertRule._meta.concrete_fields:
                setattr(rule, field.attname, getattr(self.instance, field.attname))
        for name, value in attrs.items():
            if name != "channels":
                setattr(rule, name, value)
        if not rule.key:
            rule.key = attrs["key"] = slugify(rule.name)[:100] or "rule"
        try:
            validate_rule(rule)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from None
        return attrs


class AlertRuleList(generics.ListCreateAPIView):
    queryset = AlertRule.objects.prefetch_related("channels").order_by("name")
    serializer_class = AlertRuleSerializer
    permission_classes = [StaffModelPermissions]


class AlertRuleDetail(generics.RetrieveUpdateDestroyAPIView):
    queryset = AlertRule.objects.prefetch_related("channels")
    serializer_class = AlertRuleSerializer
    permission_classes = [StaffModelPermissions]


def _hours(request: Request) -> int:
    raw = request.query_params.get("hours", request.data.get("hours", 24)
                                   if isinstance(request.data, dict) else 24)
    try:
        hours = int(raw)
    except (TypeError, ValueError):
        raise ValidationError({"hours": f"hours must be a whole number, not {raw!r}."}) from None
    if not 1 <= hours <= 168:
        raise ValidationError({"hours": "Preview 1 to 168 hours (7 days)."})
    return hours


def _preview(rule: AlertRule, hours: int, channels: int | None = None) -> Response:
    end = clock.now()
    try:
        return Response(preview_rule(rule, end - timedelta(hours=hours), end,
                                     channels=channels))
    except PreviewError as exc:
        raise ValidationError({"detail": str(exc)}) from None


class AlertRulePreview(generics.GenericAPIView):
    """What a saved rule would have done over the last ``hours`` (default 24)."""

    queryset = AlertRule.objects.all()
    serializer_class = AlertRuleSerializer
    permission_classes = [StaffModelPermissions]

    @extend_schema(parameters=[OpenApiParameter("hours", OpenApiTypes.INT)],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: Any) -> Response:
        return _preview(self.get_object(), _hours(request))


class UnsavedRulePreview(generics.GenericAPIView):
    """Preview a rule before saving it: POST the rule's fields (and ``hours``)."""

    queryset = AlertRule.objects.all()
    serializer_class = AlertRuleSerializer
    permission_classes = [CanViewRules]  # previewing writes nothing: reading rules is enough

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        data = {k: v for k, v in request.data.items() if k != "hours"}
        data.setdefault("name", "Preview")
        serializer = AlertRuleSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = {k: v for k, v in serializer.validated_data.items() if k != "channels"}
        rule = AlertRule(**values)
        return _preview(rule, _hours(request), len(serializer.validated_data.get("channels",
                                                                                 [])) or 1)


def alert_as_dict(alert: PerformanceAlert) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": str(alert.pk), "alert_id": alert.alert_id,
        "rule": alert.rule.key if alert.rule else None,
        "rule_name": alert.rule.name if alert.rule else alert.alert_type,
        "state": alert.state, "severity": alert.severity, "labels": alert.labels,
        "message": alert.message, "value": alert.actual_value, "threshold": alert.threshold,
        "peak": alert.peak_value, "started_at": iso(alert.timestamp),
        "fired_at": iso(alert.fired_at), "resolved_at": iso(alert.resolved_at),
        "resolution_reason": alert.resolution_reason, "acknowledged": alert.acknowledged,
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by
        else None,
        "acknowledged_at": iso(alert.acknowledged_at), "silenced": alert.silenced,
        "in_maintenance": alert.in_maintenance, "escalation_level": alert.escalation_level,
        "version": alert.version,
    }


class AlertList(APIView):
    permission_classes = [CanViewDashboard]

    @extend_schema(parameters=[OpenApiParameter("state", OpenApiTypes.STR),
                               OpenApiParameter("open", OpenApiTypes.BOOL),
                               OpenApiParameter("rule", OpenApiTypes.STR),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses=OpenApiTypes.OBJECT, operation_id="alerts_list")
    def get(self, request: Request) -> Response:
        alerts = PerformanceAlert.objects.select_related("rule", "acknowledged_by")
        state = request.query_params.get("state")
        if state:
            if state not in AlertState.values:
                raise ValidationError({"state": f"Unknown state {state!r}; one of "
                                                f"{', '.join(AlertState.values)}."})
            alerts = alerts.filter(state=state)
        if request.query_params.get("open") in ("1", "true", "yes"):
            alerts = alerts.filter(state__in=OPEN_STATES)
        if request.query_params.get("rule"):
            alerts = alerts.filter(rule__key=request.query_params["rule"])
        try:
            limit = min(MAX_LIMIT, max(1, int(request.query_params.get("limit", 100))))
        except ValueError:
            raise ValidationError({"limit": "limit must be a whole number."}) from None
        rows = alerts.order_by("-timestamp")[:limit]
        return Response({"alerts": [alert_as_dict(a) for a in rows]})


class AlertDetail(APIView):
    permission_classes = [CanViewDashboard]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: Any) -> Response:
        alert = generics.get_object_or_404(PerformanceAlert.objects.select_related(
            "rule", "acknowledged_by"), pk=pk)
        return Response(alert_as_dict(alert))


class AcknowledgeSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=0,
                                       help_text="The version you saw; 409 if it changed.")


class AlertAcknowledge(APIView):
    """Acknowledge an open alert: stops repeats and escalation. 409 tells you why not."""

    permission_classes = [CanViewDashboard]

    @extend_schema(request=AcknowledgeSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: Any) -> Response:
        generics.get_object_or_404(PerformanceAlert, pk=pk)
        body = AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            alert = acknowledge(pk, request.user,
                                expected_version=body.validated_data.get("version"))
        except AckConflict as conflict:
            return Response({"detail": conflict.reason, "alert": alert_as_dict(conflict.alert)},
                            status=status.HTTP_409_CONFLICT)
        return Response(alert_as_dict(alert))


class SilenceSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    starts_at = serializers.DateTimeField(required=False)
    active = serializers.SerializerMethodField()

    class Meta:
        model = Silence
        fields = ["id", "matchers", "starts_at", "ends_at", "comment", "created_by",
                  "created_at", "active"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"comment": {"allow_blank": True}}  # validate_silence explains why not

    def get_active(self, silence: Silence) -> bool:
        return silence.starts_at <= clock.now() < silence.ends_at

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("starts_at", self.instance.starts_at if self.instance else clock.now())
        probe = Silence(**{**({f: getattr(self.instance, f) for f in
                               ("matchers", "starts_at", "ends_at", "comment")}
                              if self.instance else {}), **attrs})
        try:
            validate_silence(probe)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from None
        return attrs


class SilenceList(generics.ListCreateAPIView):
    queryset = Silence.objects.select_related("created_by").order_by("-starts_at")
    serializer_class = SilenceSerializer
    permission_classes = [StaffModelPermissions]

    def perform_create(self, serializer: SilenceSerializer) -> None:
        serializer.save(created_by=self.request.user)


class SilenceDetail(generics.RetrieveDestroyAPIView):
    queryset = Silence.objects.select_related("created_by")
    serializer_class = SilenceSerializer
    permission_classes = [StaffModelPermissions]

    def perform_destroy(self, instance: Silence) -> None:
        now = clock.now()  # expire rather than delete: the audit trail stays
        if instance.ends_at > now:
            instance.ends_at = max(now, instance.starts_at)
            instance.save(update_fields=["ends_at"])


class AlertStatistics(APIView):
    permission_classes = [CanViewDashboard]

    @extend_schema(parameters=[OpenApiParameter("window", OpenApiTypes.STR,
                                                description="15m, 6h, 7d or 2w.")],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        try:
            span = parse_span(request.query_params.get("window", "7d"))
        except WindowError as exc:
            raise ValidationError({"window": str(exc)}) from None
        return Response(alert_statistics(span))
