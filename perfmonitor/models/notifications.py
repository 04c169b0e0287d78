"""Notification channels, the notification outbox and its delivery log.

The engine writes ``AlertNotification`` rows in the same transaction as the
state change that causes them (transactional outbox); Celery delivers them at
least once. ``idempotency_key`` is unique per (channel, episode, event) and is
sent with every attempt, so receivers can drop duplicates. Every attempt gets a
``NotificationDelivery`` row.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.db import models

from perfmonitor.ids import uuid7


class ChannelType(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack (incoming webhook)"
    WEBHOOK = "webhook", "Webhook (Alertmanager v4 JSON, signed)"
    SMS = "sms", "SMS"
    IN_APP = "in_app", "In-app"


class NotificationChannel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=200, unique=True)
    type = models.CharField(max_length=16, choices=ChannelType.choices)
    target = models.CharField(
        max_length=2000, blank=True, default="",
        help_text="Email: addresses, comma separated. Slack / webhook: URL. SMS: phone numbers "
                  "(E.164), comma separated. In-app: empty.")
    secret = models.CharField(
        max_length=255, blank=True, default="",
        help_text="Webhook signing secret (Standard Webhooks, `whsec_<base64>`); empty uses "
                  "ALERT_WEBHOOK_SECRET.")
    settings = models.JSONField(default=dict, blank=True,
                                help_text="Extra options, e.g. {\"headers\": {...}} for webhooks.")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "perfmonitor_notification_channels"
        verbose_name = "notification channel"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_type_display()})"

    def clean(self) -> None:
        from perfmonitor.alerts.notifiers import validate_channel

        validate_channel(self)


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class AlertNotification(models.Model):
    """Outbox row: one notification of one event of one episode to one channel."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    idempotency_key = models.CharField(max_length=64, unique=True)
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE,
                                related_name="notifications")
    alert = models.ForeignKey("perfmonitor.PerformanceAlert", on_delete=models.CASCADE,
                              related_name="notifications")
    event = models.CharField(max_length=40, help_text="firing, resolved, no_data, error, "
                             "severity:<level>, repeat:<n>, escalation:<loop>.<level>")
    payload = models.JSONField(help_text="Rendered once; identical on every attempt.")
    status = models.CharField(max_length=16, choices=NotificationStatus.choices,
                              default=NotificationStatus.PENDING)
    due_at = models.DateTimeField(help_text="Not sent before (group wait, backoff).")
    lease_until = models.DateTimeField(null=True, blank=True,
                                       help_text="A worker owns the sending attempt until then.")
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "perfmonitor_alert_notifications"
        verbose_name = "alert notification"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "due_at"], name="pm_notif_status_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.channel_id} ({self.status})"


class DeliveryOutcome(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    SUCCESS = "success", "Delivered"
    RETRY = "retry", "Failed, will retry"
    FAILED = "failed", "Failed permanently"
    LOST = "lost", "Worker lost during the attempt"
    DEFERRED = "deferred", "Deferred (silenced when due)"


class NotificationDelivery(models.Model):
    """One delivery attempt (the delivery log)."""

    id = models.BigAutoField(primary_key=True)
    notification = models.ForeignKey(AlertNotification, on_delete=models.CASCADE,
                                     related_name="deliveries")
    attempt = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=DeliveryOutcome.choices,
                               default=DeliveryOutcome.IN_PROGRESS)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    response_excerpt = models.CharField(max_length=500, blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        db_table = "perfmonitor_notification_deliveries"
        verbose_name = "notification delivery"
        verbose_name_plural = "notification deliveries"
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "attempt"],
                                    name="pm_delivery_one_row_per_attempt"),
        ]

    def __str__(self) -> str:
        return f"{self.notification_id} #{self.attempt} {self.outcome}"


class InAppNotification(models.Model):
    """A notification shown in the admin (and pushed live); one per outbox row."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    idempotency_key = models.CharField(max_length=64, unique=True)
    alert = models.ForeignKey("perfmonitor.PerformanceAlert", null=True, blank=True,
                              on_delete=models.CASCADE, related_name="in_app_notifications")
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True, default="")
    severity = models.CharField(max_length=20, blank=True, default="")
    status = models.CharField(max_length=16, blank=True, default="", help_text="firing/resolved")
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    read_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")

    class Meta:
        db_table = "perfmonitor_in_app_notifications"
        verbose_name = "in-app notification"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title
