"""In-app: stored as an ``InAppNotification`` and pushed to the live dashboard group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfmonitor import live
from perfmonitor.alerts import clock
from perfmonitor.alerts.notifiers import DeliveryResult
from perfmonitor.models import InAppNotification

if TYPE_CHECKING:
    from perfmonitor.models import NotificationChannel


def send(channel: NotificationChannel, message: dict[str, Any], key: str,
         timeout: float) -> DeliveryResult:
    alert = message["alert"]
    item, created = InAppNotification.objects.get_or_create(
        idempotency_key=key,
        defaults={"alert_id": alert["id"], "title": message["title"][:300],
                  "body": alert["annotations"]["summary"], "severity": alert["severity"],
                  "status": message["status"], "created_at": clock.now()})
    if created:
        live.publish("alerts", {"type": "notification", "id": str(item.pk),
                                "alert": alert["id"], "title": item.title, "body": item.body,
                                "severity": item.severity, "status": item.status}, force=True)
    return DeliveryResult.success(response="stored" if created else "already stored")
