"""Slack incoming webhook: Block Kit blocks plus a plain ``text`` fallback.

Slack answers 200 ``ok``; 400/403/404 mean a bad or revoked webhook (final),
410 ``channel_is_archived`` disables the channel (see the delivery task), 429
and 5xx are retried. The idempotency key travels as ``Idempotency-Key`` for
proxies that deduplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfmonitor.alerts.notifiers import DeliveryResult, post_json

if TYPE_CHECKING:
    from perfmonitor.models import NotificationChannel

EMOJI = {"resolved": ":white_check_mark:", "critical": ":red_circle:", "warning": ":warning:",
         "info": ":information_source:"}


def blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    alert = message["alert"]
    emoji = EMOJI["resolved"] if message["status"] == "resolved" else \
        EMOJI.get(alert["severity"], ":bell:")
    labels = "  ".join(f"`{k}={v}`" for k, v in sorted(alert["labels"].items()))
    result: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message["title"][:150],
                                    "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"{emoji} {alert['annotations']['summary']}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": labels[:2000] or "-"}]},
    ]
    if alert.get("url"):
        result.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Open alert"},
            "url": alert["url"]}]})
    return result


def send(channel: NotificationChannel, message: dict[str, Any], key: str,
         timeout: float) -> DeliveryResult:
    body = {"text": message["text"], "blocks": blocks(message)}
    return post_json(channel.target, body, {"Idempotency-Key": key}, timeout)
