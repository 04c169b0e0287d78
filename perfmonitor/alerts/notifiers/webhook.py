"""Generic webhook: Alertmanager webhook v4 JSON, signed per Standard Webhooks.

Headers on every attempt:

* ``webhook-id``: the notification's idempotency key (the same on retries),
  also sent as ``Idempotency-Key``;
* ``webhook-timestamp``: Unix seconds of this attempt;
* ``webhook-signature``: ``v1,<base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))>``
  where key is the base64-decoded part of the ``whsec_...`` secret.

Receivers verify with any Standard Webhooks library, or :func:`verify`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from perfmonitor.alerts.notifiers import DeliveryResult, canonical_json, post
from perfmonitor.conf import settings

if TYPE_CHECKING:
    from perfmonitor.models import NotificationChannel

PREFIX = "whsec_"
ZERO_TIME = "0001-01-01T00:00:00Z"
TOLERANCE_SECONDS = 300


def generate_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(32)).decode()


def secret_key(secret: str) -> bytes:
    raw = secret[len(PREFIX):] if secret.startswith(PREFIX) else secret
    return base64.b64decode(raw, validate=True)


def secret_error(secret: str) -> str:
    secret = secret or settings.ALERT_WEBHOOK_SECRET or ""
    if not secret:
        return "Webhooks are signed: set a secret (whsec_<base64>) or ALERT_WEBHOOK_SECRET."
    try:
        if len(secret_key(secret)) < 16:
            return "The secret is too short; use at least 16 random bytes (24 base64 chars)."
    except (binascii.Error, ValueError):
        return "The secret must be whsec_ followed by base64 (Standard Webhooks format)."
    return ""


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, *,
           now: float | None = None, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Check a received request (headers looked up case-insensitively)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp = lowered.get("webhook-id", ""), lowered.get("webhook-timestamp", "")
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
    for candidate in lowered.get("webhook-signature", "").split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def alertmanager_payload(message: dict[str, Any]) -> dict[str, Any]:
    alert = message["alert"]
    labels = alert["labels"]
    group_labels = {"alertname": labels.get("alertname", "")}
    status = message["status"]
    return {
        "version": "4",
        "groupKey": f"{{}}:{{alertname={_quote(group_labels['alertname'])}, "
                    f"fingerprint={_quote(alert['fingerprint'])}}}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": message.get("receiver", ""),
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": settings.ALERT_EXTERNAL_URL,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": alert["annotations"],
            "startsAt": alert["starts_at"],
            "endsAt": alert["ends_at"] or ZERO_TIME,
            "generatorURL": alert["url"],
            "fingerprint": alert["fingerprint"],
        }],
        # perfmonitor's extras; Alertmanager receivers ignore unknown keys
        "perfmonitor": {"event": message["event"], "state": alert["state"],
                        "value": alert["value"], "threshold": alert["threshold"],
                        "unit": alert["unit"], "escalation_level": message["escalation_level"],
                        "acknowledged": alert["acknowledged"], "alert_id": alert["id"]},
    }


def _quote(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def send(channel: NotificationChannel, message: dict[str, Any], key: str,
         timeout: float) -> DeliveryResult:
    secret = channel.secret or settings.ALERT_WEBHOOK_SECRET or ""
    problem = secret_error(secret)
    if problem:
        return DeliveryResult.failure(problem, retryable=False)
    body = canonical_json(alertmanager_payload(message))
    timestamp = int(time.time())
    headers = {str(k): str(v) for k, v in (channel.settings or {}).get("headers", {}).items()}
    headers.update({
        "webhook-id": key,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, key, timestamp, body),
        "Idempotency-Key": key,
    })
    return post(channel.target, body, headers, timeout)
